/**
 * A durable event survives a crash, as a user sees it: `livelycouch start` on its own
 * embedded store, 1,000 triggers acknowledged, the runtime SIGKILLed before its workers are
 * done, started again on the same data directory: every trigger completes.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool, request } from 'undici';
import { connect } from '../../src/store/couch.ts';
import { eventually } from '../support/runtime.ts';
import { adminHeaders } from '../support/couch.ts';
import { removeDir } from '../support/cleanup.ts';

const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const att = (code: string) => ({ content_type: 'application/javascript', data: Buffer.from(code).toString('base64') });

interface Started { proc: ChildProcess; url: string; storeUrl: string }

async function startCli(dataDir: string): Promise<Started> {
  const env = { ...process.env };
  delete env.COUCHDB_URL; // the CLI's own embedded store, on disk in dataDir
  const proc = spawn(process.execPath, ['--no-node-snapshot', '--import', 'tsx', main, 'start', '--port', '0', '--data', dataDir, '--no-sample', '--log-level', 'warn'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`livelycouch start exited with ${code}`)));
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      const m = /listening on (\S+)/.exec(line);
      if (m) resolve(m[1]!);
    });
  });
  const state = JSON.parse(readFileSync(path.join(dataDir, 'runtime.json'), 'utf8')) as { storeUrl: string };
  return { proc, url, storeUrl: state.storeUrl };
}

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };
const exited = (p: ChildProcess) => new Promise<void>((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.once('exit', () => r())));

/**
 * Messages with n below `quick` finish at once; the others wait for the release file, which
 * only appears after the crash. Each appends "n activation" to the out file.
 */
const WORKER = `const fs = require('fs');
module.exports = async (msg) => {
  const p = msg.parameters;
  while (Number(p.n) >= Number(p.quick) && !fs.existsSync(p.release)) await new Promise((r) => setTimeout(r, 25));
  fs.appendFileSync(p.out, p.n + ' ' + msg.activation + '\\n');
  return { n: p.n };
};`;

function lines(file: string): Array<[number, string]> {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => { const [n, a] = l.split(' '); return [Number(n), a!]; });
}

describe('durable events across a crash (real processes)', function () {
  this.timeout(180_000);
  const running: ChildProcess[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    for (const p of running.splice(0)) if (p.exitCode === null && p.signalCode === null) { p.kill('SIGTERM'); await exited(p); }
    for (const dir of dirs.splice(0)) removeDir(dir);
  });

  it('1,000 acknowledged triggers, SIGKILL before the workers finish, restart on the same data: all 1,000 complete', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lively-durable-crash-'));
    dirs.push(dataDir);
    const out = path.join(dataDir, 'out.txt');
    const release = path.join(dataDir, 'release');
    const total = 1000;
    const quick = 300;

    const first = await startCli(dataDir);
    running.push(first.proc);
    const nano = connect(first.storeUrl);
    await nano.use('lively_workers').insert({ _id: 'slow', type: 'node', delegate: 'index.js', concurrency: 200, _attachments: { 'index.js': att(WORKER) } } as never);
    await nano.use('lively_events').insert({ _id: 'orders', durable: true, trigger: { '/orders': { method: 'POST' } }, workers: { slow: {} } } as never);
    await eventually(async () => {
      const res = await request(`${first.url}/_events/orders?wait=true`, { method: 'POST', body: JSON.stringify({ n: -1, quick: 0, release: '', out: path.join(dataDir, 'warm.txt') }), headers: { 'content-type': 'application/json' } });
      await res.body.dump();
      return res.statusCode === 200;
    }, 15_000, 'the event deployed');

    const pool = new Pool(first.url, { connections: 20 });
    const acked = new Map<number, string>();
    try {
      await Promise.all(Array.from({ length: total }, async (_, n) => {
        const res = await pool.request({ path: '/_events/orders', method: 'POST', body: JSON.stringify({ n, quick, release, out }), headers: { 'content-type': 'application/json' } });
        const body = (await res.body.json()) as { activation: string };
        expect(res.statusCode, JSON.stringify(body)).to.equal(202);
        acked.set(n, body.activation);
      }));
    } finally {
      await pool.close();
    }
    expect(acked.size).to.equal(total);

    const storePid = ((await (await request(`${first.url}/_lively/status`, { headers: adminHeaders(first.storeUrl) })).body.json()) as { store: { pid: number } }).store.pid;
    first.proc.kill('SIGKILL');
    await exited(first.proc);
    const beforeRestart = new Set(lines(out).map(([n]) => n));
    // The messages at or over `quick` were all still waiting for the release file.
    expect([...beforeRestart].filter((n) => n >= quick)).to.deep.equal([]);
    expect(total - beforeRestart.size).to.be.at.least(total - quick);
    await eventually(() => !alive(storePid), 20_000, 'the old store gone');

    writeFileSync(release, '');
    const second = await startCli(dataDir);
    running.push(second.proc);
    await eventually(() => new Set(lines(out).map(([n]) => n)).size === total, 120_000, 'all 1,000 to complete');
    const seen = lines(out);
    for (let n = 0; n < total; n++) expect(seen.some(([m]) => m === n), `message ${n}`).to.equal(true);
    // Run again under the activation id the client was given.
    for (const [n, activation] of seen) expect(activation, `message ${n}`).to.equal(acked.get(n));
    // And once done, nothing is left in the journal.
    const journals = (await connect(second.storeUrl).db.list()).filter((db) => db.startsWith('lively_durable_'));
    await eventually(async () => {
      let left = 0;
      for (const db of journals) left += (await connect(second.storeUrl).db.get(db)).doc_count;
      return left === 0;
    }, 20_000, 'the journal to be empty');
  });
});
