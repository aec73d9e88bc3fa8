/**
 * The console's live feed on its own, over a real HTTP connection: what a record costs when no
 * console is open, batches capped with the rest counted, the per-second history, and the
 * per-event and per-worker figures; and the build of the console's files on first request.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync, utimesSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { ActivationRecord } from '../../src/activations/recorder.ts';
import { buildConsole, consoleDist, consoleStale, kPackageRoot, loadConsoleFiles } from '../../src/server/console-build.ts';
import { ConsoleFeed } from '../../src/server/console-feed.ts';

function rec(n: number, status: 'ok' | 'error' = 'ok', event = 'e'): ActivationRecord {
  return {
    activation: `a${n}`, events: [event], trigger: 'http', path: '/p', method: 'POST', started: Date.now(), durationMs: n % 10,
    workers: [{ worker: 'w', status, durationMs: n % 10, logs: [], ...(status === 'error' ? { error: { message: `boom ${n}` } } : {}) }],
  } as ActivationRecord;
}

describe('console feed', () => {
  let feed: ConsoleFeed;
  let server: http.Server;
  let url = '';

  beforeEach(async () => {
    feed = new ConsoleFeed(() => ({ queued: 3, inFlight: 2, warm: 1 }), { flushMs: 50, maxBatch: 10 });
    server = http.createServer((_req, res) => feed.attach(res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });

  afterEach(async () => {
    feed.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  /** Reads the stream until `until` holds for what arrived, then closes it. */
  async function listen(until: (text: string) => boolean, whileOpen?: () => void): Promise<string> {
    return new Promise((resolve, reject) => {
      http.get(url, (res) => {
        let text = '';
        let fed = false;
        res.on('data', (c: Buffer) => {
          text += c.toString();
          if (!fed && text.includes('event: history')) { fed = true; whileOpen?.(); }
          if (until(text)) { res.destroy(); resolve(text); }
        });
      }).on('error', reject);
    });
  }

  function messages(text: string, event: string): any[] {
    return text.split('\n\n').filter((m) => m.startsWith(`event: ${event}\n`)).map((m) => JSON.parse(m.slice(m.indexOf('data: ') + 6)));
  }

  it('counts records while no console is open, but keeps no summaries for one', () => {
    for (let i = 0; i < 50; i++) feed.record(rec(i, i % 5 === 0 ? 'error' : 'ok'));
    expect(feed.eventStats('e')).to.include({ fired: 50, errors: 10, perMinute: 50, lastStatus: 'ok' });
    const w = feed.workerStats('w');
    expect(w).to.include({ runs: 50, errors: 10 });
    expect(w.lastErrors.map((e) => e.message)).to.deep.equal(['boom 45', 'boom 40', 'boom 35', 'boom 30', 'boom 25']);
    expect((feed as unknown as { pending: unknown[] }).pending).to.have.length(0);
    expect(feed.eventStats('never')).to.deep.equal({ fired: 0, errors: 0, perMinute: 0 });
  });

  it('sends at most maxBatch summaries per flush and counts the rest as skipped', async () => {
    const text = await listen((t) => messages(t, 'activations').length > 0, () => {
      for (let i = 0; i < 25; i++) feed.record(rec(i));
    });
    const [batch] = messages(text, 'activations');
    expect(batch.activations).to.have.length(10);
    expect(batch.skipped).to.equal(15);
    expect(batch.activations[0]).to.deep.equal({ activation: 'a0', events: ['e'], trigger: 'http', path: '/p', method: 'POST', started: batch.activations[0].started, durationMs: 0, status: 'ok', workers: [{ worker: 'w', status: 'ok' }] });
  });

  it('a second of figures: triggers, errors, latency quantiles and the runtime gauges', async () => {
    feed.start();
    for (let i = 0; i < 100; i++) feed.record(rec(i, i < 4 ? 'error' : 'ok'));
    const text = await listen((t) => messages(t, 'tick').length > 0);
    const [tick] = messages(text, 'tick');
    expect(tick).to.include({ triggers: 100, errors: 4, p50: 5, p99: 9, queued: 3, inFlight: 2, warm: 1, store: 1 });
    expect(feed.points().at(-1)).to.deep.equal(tick);
    // the next console to open gets it as history
    const again = await listen((t) => t.includes('event: history'));
    expect(messages(again, 'history')[0]).to.deep.equal(feed.points());
  });

  it('a dead activation is shown as dead; stops tracking new names past maxSeries', () => {
    const small = new ConsoleFeed(() => ({ queued: 0, inFlight: 0, warm: 0 }), { maxSeries: 2 });
    small.record({ ...rec(1, 'error', 'a'), dead: true });
    small.record(rec(2, 'ok', 'b'));
    small.record(rec(3, 'ok', 'c'));
    expect(small.eventStats('a')).to.include({ fired: 1, errors: 1, lastStatus: 'dead' });
    expect(small.eventStats('c')).to.deep.equal({ fired: 0, errors: 0, perMinute: 0 });
    small.close();
  });
});

describe('console build', function () {
  this.timeout(60_000);
  const dirs: string[] = [];
  after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

  function checkout(withSource: boolean): string {
    const root = mkdtempSync(path.join(os.tmpdir(), 'lively-console-'));
    dirs.push(root);
    symlinkSync(path.join(kPackageRoot, 'node_modules'), path.join(root, 'node_modules'));
    if (withSource) symlinkSync(path.join(kPackageRoot, 'console'), path.join(root, 'console'));
    return root;
  }

  it('builds the files on first use when dist/console/ is missing, with uPlot inside (nothing from a CDN)', async () => {
    const root = checkout(true);
    const files = await loadConsoleFiles(root);
    expect(existsSync(path.join(consoleDist(root), 'app.js'))).to.equal(true);
    const app = files['app.js'].toString();
    expect(app).to.contain('uplot');
    expect(app).not.to.match(/https?:\/\/(cdn|unpkg|jsdelivr)/);
    expect(files['console.css'].toString()).to.contain('.uplot');
    expect(files['signin.js'].length).to.be.below(app.length);
  });

  it('builds again when a source in console/ is newer than the build', async () => {
    const root = checkout(true);
    await loadConsoleFiles(root);
    expect(consoleStale(root)).to.equal(false);
    const old = new Date('2000-01-01T00:00:00Z');
    utimesSync(path.join(consoleDist(root), 'app.js'), old, old);
    expect(consoleStale(root), 'a source is newer than app.js').to.equal(true);
    await loadConsoleFiles(root);
    expect(consoleStale(root)).to.equal(false);
  });

  it('a build that fails says why and leaves no half-built dist/console/', async () => {
    const root = checkout(false);
    let error: unknown;
    try { await buildConsole(root); } catch (err) { error = err; }
    expect(String(error)).to.match(/console/);
    expect(existsSync(consoleDist(root))).to.equal(false);
    expect(existsSync(path.join(root, 'dist')) ? readdirSync(path.join(root, 'dist')) : [], 'no build left over').to.deep.equal([]);
  });
});
