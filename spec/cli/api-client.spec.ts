/**
 * What `livelycouch logs/status/trigger` send to a runtime: the credentials (Basic auth) and the
 * query of the activations API contract (filters, `since`, paging with `before`/`next`).
 * The runtime here is a small HTTP server that records requests and answers as the contract
 * says, because the filters and the admin requirement are not in every runtime yet; the same
 * commands against a real runtime are in app.spec.ts.
 */
import { expect } from 'chai';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { kAdminName, kPasswordFile } from '../../src/store/embedded/contract.ts';
import { eventually } from '../support/runtime.ts';

const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

interface Seen { method: string; path: string; query: URLSearchParams; auth?: string; body: string }

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const base = { ...process.env };
  for (const k of ['COUCHDB_URL', 'LIVELY_URL', 'LIVELY_USER', 'LIVELY_PASSWORD', 'LIVELY_DATA', 'LIVELY_PORT']) delete base[k];
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--no-node-snapshot', '--import', 'tsx', main, ...args], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += String(d); });
    p.stderr.on('data', (d) => { stderr += String(d); });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const basic = (user: string, pw: string) => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;
const rec = (n: number, event = 'e') => ({ activation: `a${n}`, events: [event], trigger: 'http', path: `/${event}`, method: 'GET', started: 1_700_000_000_000 + n * 1000, durationMs: 1, workers: [{ worker: 'w', status: 'ok', logs: [], durationMs: 1 }] });

describe('livelycouch talking to a runtime API', function () {
  this.timeout(60_000);
  const seen: Seen[] = [];
  let answer: (s: Seen) => { status: number; body: unknown } = () => ({ status: 200, body: {} });
  let server: http.Server;
  let origin = '';

  before(async () => {
    server = http.createServer(onRequest);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  function onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    {
      let body = '';
      req.on('data', (d) => { body += String(d); });
      req.on('end', () => {
        const u = new URL(req.url!, 'http://x');
        const s: Seen = { method: req.method!, path: u.pathname, query: u.searchParams, auth: req.headers.authorization, body };
        seen.push(s);
        const a = answer(s);
        res.writeHead(a.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(a.body));
      });
    }
  }
  after(() => new Promise<void>((r) => server.close(() => r())));
  beforeEach(() => { seen.length = 0; });

  it('logs sends the filters and --user credentials, follows next with before, and prints oldest first', async () => {
    answer = (s) => (s.query.get('before') === 'p2'
      ? { status: 200, body: { activations: [rec(2), rec(1)] } }
      : { status: 200, body: { activations: [rec(4), rec(3)], next: 'p2' } });
    const r = await cli(['logs', '--url', origin, '--user', 'root:pa55word', '--event', 'e', '--worker', 'w', '--status', 'ok', '--since', '1700000000000', '--limit', '3']);
    expect(r.stderr).to.equal('');
    expect(seen[0]!.path).to.equal('/_lively/activations');
    expect(Object.fromEntries(seen[0]!.query)).to.deep.equal({ event: 'e', worker: 'w', status: 'ok', since: '1700000000000', limit: '3' });
    expect(seen[1]!.query.get('before')).to.equal('p2');
    expect(seen.every((s) => s.auth === basic('root', 'pa55word'))).to.equal(true);
    expect(r.stdout.trim().split('\n').map((l) => l.split('  ')[1])).to.deep.equal(['a2', 'a3', 'a4']);
  });

  it('without --user, the API gets the admin of the embedded store in the data directory', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lively-cli-auth-'));
    writeFileSync(path.join(dataDir, kPasswordFile), 'the-store-secret\n');
    answer = () => ({ status: 200, body: { ok: true, url: origin } });
    const port = new URL(origin).port;
    const r = await cli(['status', '--data-dir', dataDir, '--port', port]);
    expect(r.code, r.stderr).to.equal(0);
    expect(seen[0]!.auth).to.equal(basic(kAdminName, 'the-store-secret'));
    expect(r.stdout).to.not.contain('the-store-secret');
    // A running runtime's state file names its store, with credentials: those are used.
    writeFileSync(path.join(dataDir, 'runtime.json'), JSON.stringify({ url: origin, pid: process.pid, storeUrl: 'http://admin:couch-pw@127.0.0.1:1' }));
    await cli(['logs', '--data-dir', dataDir]);
    expect(seen[1]!.auth).to.equal(basic('admin', 'couch-pw'));
    // COUCHDB_URL's credentials come first.
    await cli(['status', '--data-dir', dataDir], { COUCHDB_URL: 'http://boss:env-pw@127.0.0.1:1' });
    expect(seen[2]!.auth).to.equal(basic('boss', 'env-pw'));
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('trigger sends a JSON body as POST, and credentials only when given', async () => {
    answer = () => ({ status: 202, body: { ok: true, activation: 'x1', events: ['e'], workers: ['w'] } });
    const r = await cli(['trigger', 'a/b?x=1', '--url', origin, '--body', '{"n":1}']);
    expect(r.code, r.stderr).to.equal(0);
    expect(seen[0]).to.deep.include({ method: 'POST', path: '/_events/a/b', body: '{"n":1}', auth: undefined });
    expect(seen[0]!.query.get('x')).to.equal('1');
    await cli(['trigger', 'a', '--url', origin, '-X', 'put', '--wait'], { LIVELY_USER: 'ann', LIVELY_PASSWORD: 'pw-ann' });
    expect(seen[1]).to.deep.include({ method: 'PUT', path: '/_events/a', auth: basic('ann', 'pw-ann') });
    expect(seen[1]!.query.get('wait')).to.equal('true');
  });

  it('trigger prints an endpoint\'s own response as it is', async () => {
    answer = () => ({ status: 201, body: { entries: [{ name: 'Ada' }] } });
    const r = await cli(['trigger', 'api/entries', '--url', origin]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.equal('{"entries":[{"name":"Ada"}]}\n');
  });

  it('a refused API call is one line with the status, and no password', async () => {
    answer = () => ({ status: 401, body: { error: 'LC_UNAUTHORIZED', reason: 'admin credentials required' } });
    const r = await cli(['status', '--url', origin, '--user', 'root:wrong-password']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal('livelycouch status: 401 LC_UNAUTHORIZED: admin credentials required\n');
    answer = () => ({ status: 200, body: { nothing: true } });
    const odd = await cli(['logs', '--url', `http://u:leaky-pw@${new URL(origin).host}`]);
    expect(odd.code).to.equal(1);
    expect(odd.stderr).to.match(/^livelycouch logs: the runtime answered \/_lively\/activations without an "activations" list\n$/);
    expect(odd.stderr).to.not.contain('leaky-pw');
  });

  it('logs -f keeps following while the runtime is away, and says so once', async () => {
    const now = (n: number) => ({ ...rec(n), started: Date.now() });
    let records = [now(1)];
    answer = () => ({ status: 200, body: { activations: [...records].reverse() } });
    const base = { ...process.env };
    for (const k of ['COUCHDB_URL', 'LIVELY_URL', 'LIVELY_USER', 'LIVELY_PASSWORD', 'LIVELY_DATA']) delete base[k];
    const p = spawn(process.execPath, ['--no-node-snapshot', '--import', 'tsx', main, 'logs', '-f', '--url', origin, '--user', 'root:pw-follow', '--since', '0'], { env: base, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += String(d); });
    p.stderr.on('data', (d) => { stderr += String(d); });
    try {
      await eventually(() => stdout.includes('  a1  '), 20_000, 'the first record');
      const port = Number(new URL(origin).port);
      await new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); });
      await eventually(() => stderr.includes('still following'), 20_000, 'the outage reported');
      await new Promise((r) => setTimeout(r, 1_200)); // several failed polls: reported once
      records = [records[0]!, now(2)];
      server = http.createServer(onRequest);
      await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
      await eventually(() => stdout.includes('  a2  '), 20_000, 'the record written while away');
      expect(stderr.split('\n').filter(Boolean)).to.deep.equal([
        `livelycouch logs: no runtime answers at ${origin} (start one with "livelycouch start", or point at one with --url); still following`,
        'livelycouch logs: the runtime answers again',
      ]);
      expect(stdout.split('\n').filter((l) => l.includes('  a1  '))).to.have.length(1);
    } finally {
      p.kill('SIGINT');
      await new Promise((r) => (p.exitCode !== null ? r(null) : p.once('exit', r)));
    }
    expect(p.exitCode).to.equal(0);
  });
});
