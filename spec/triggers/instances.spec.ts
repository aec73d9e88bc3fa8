/**
 * Changes and schedule triggers across crashes and several runtimes: `livelycouch start`
 * processes on the suite's store (one database prefix per spec), SIGKILLed by the specs.
 * Workers append a line per message to a file, so completion is seen without the runtime.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { connect } from '../../src/store/couch.ts';
import { couchUrl, dropPrefix, uniquePrefix } from '../support/couch.ts';
import { eventually } from '../support/runtime.ts';
import { removeDir } from '../support/cleanup.ts';

const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const kLeaseMs = 1_000;
const kConcurrency = 50;

interface Instance { proc: ChildProcess; url: string; dataDir: string }

/** `livelycouch start` on the suite's store under `prefix`, with a short lease. */
async function startInstance(prefix: string): Promise<Instance> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lively-inst-'));
  const env = { ...process.env, LIVELY_LEASE_MS: String(kLeaseMs), LIVELY_CHANGES_CONCURRENCY: String(kConcurrency) };
  const proc = spawn(process.execPath, ['--no-node-snapshot', '--import', 'tsx', main, 'start', '--couch', couchUrl(), '--prefix', prefix,
    '--port', '0', '--data', dataDir, '--no-sample', '--log-level', 'error', '--threads', '2'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`livelycouch start exited with ${code}`)));
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      const m = /listening on (\S+)/.exec(line);
      if (m) resolve(m[1]!);
    });
  }).catch((err: unknown) => { removeDir(dataDir); throw err; });
  return { proc, url, dataDir };
}

const exited = (p: ChildProcess) => new Promise<void>((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.once('exit', () => r())));

/** GET /_lively/status as the store's admin (the runtimes share the suite's store). */
async function status<T>(i: Instance): Promise<T> {
  const u = new URL(couchUrl());
  const authorization = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
  const res = await request(`${i.url}/_lively/status`, { headers: { authorization } });
  return await res.body.json() as T;
}

async function feedState(i: Instance, event: string): Promise<string | undefined> {
  const body = await status<{ feeds: Array<{ event: string; state: string }> }>(i);
  return body.feeds.find((f) => f.event === event)?.state;
}

/**
 * Whether the runtime's feed for `event` has saved a checkpoint at or past the database's
 * current update sequence. Sequences are opaque in CouchDB 3 ("<n>-<shard data>"), but their
 * leading number grows with every change, in the embedded store as in CouchDB.
 */
async function checkpointed(i: Instance, event: string, nano: ReturnType<typeof connect>, db: string): Promise<boolean> {
  const body = await status<{ feeds: Array<{ event: string; checkpoint?: string }> }>(i);
  const saved = body.feeds.find((f) => f.event === event)?.checkpoint;
  const info = await nano.db.get(db);
  return saved !== undefined && parseInt(String(saved), 10) >= parseInt(String(info.update_seq), 10);
}

const att = (code: string) => ({ 'index.js': { content_type: 'application/javascript', data: Buffer.from(code).toString('base64') } });

/** A node worker appending "<phase> <key> <pid>" lines to `arguments.file`, with a short pause between start and done. */
const recorder = {
  _id: 'recorder', type: 'node', delegate: 'index.js', _attachments: att(`const fs = require('node:fs');
module.exports = async (msg) => {
  const key = msg.trigger === 'schedule' ? msg.tick.at : msg.parameters.id;
  fs.appendFileSync(msg.arguments.file, 'start ' + key + ' ' + process.pid + '\\n');
  await new Promise((r) => setTimeout(r, Number(msg.arguments.ms || 0)));
  fs.appendFileSync(msg.arguments.file, 'done ' + key + ' ' + process.pid + '\\n');
  return {};
};`),
};

function lines(file: string): Array<{ phase: string; key: string; pid: number }> {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => {
    const [phase, key, pid] = l.split(' ');
    return { phase: phase!, key: key!, pid: Number(pid) };
  });
}

describe('changes and schedule triggers across crashes and runtimes (livelycouch start processes)', function () {
  this.timeout(90_000);
  const instances: Instance[] = [];
  const prefixes: string[] = [];
  const fresh = () => { const p = uniquePrefix(); prefixes.push(p); return p; };
  /** A file in a directory of its own, where recorder workers append what they ran. */
  const outDirs: string[] = [];
  const outFile = () => { const dir = mkdtempSync(path.join(os.tmpdir(), 'lively-out-')); outDirs.push(dir); return path.join(dir, 'out.txt'); };
  const start = async (prefix: string) => { const i = await startInstance(prefix); instances.push(i); return i; };
  afterEach(async () => {
    for (const i of instances.splice(0)) {
      if (i.proc.exitCode === null && i.proc.signalCode === null) { i.proc.kill('SIGKILL'); await exited(i.proc); }
      removeDir(i.dataDir);
    }
    for (const dir of outDirs.splice(0)) removeDir(dir);
  });
  after(async () => { for (const p of prefixes) await dropPrefix(p); });

  async function deploy(prefix: string, event: Record<string, unknown>): Promise<void> {
    const nano = connect(couchUrl());
    await nano.use(`${prefix}workers`).insert(recorder as never).catch((err) => { if (err.statusCode !== 409) throw err; });
    await nano.use(`${prefix}events`).insert(event as never);
  }

  it('SIGKILL while 1,000 changes are processed, start again: every change finishes at least once, and no more run twice than were in flight', async () => {
    const prefix = fresh();
    const file = outFile();
    const db = `${prefix}inbox`;
    const nano = connect(couchUrl());
    await nano.db.create(db);
    const first = await start(prefix);
    await deploy(prefix, { _id: 'on_message', trigger: { changes: { db } }, workers: { recorder: { file, ms: 20 } } });
    await eventually(async () => (await feedState(first, 'on_message')) === 'running', 15_000, 'feed running');
    const ids = Array.from({ length: 1000 }, (_, i) => `m${String(i).padStart(4, '0')}`);
    await nano.use(db).bulk({ docs: ids.map((_id) => ({ _id })) });
    // killed a quarter of the way, with a batch's workers running
    const count = (phase: string) => lines(file).filter((l) => l.phase === phase).length;
    await eventually(() => count('done') >= 250 && count('start') > count('done'), 30_000, 'a quarter done, a batch in flight');
    first.proc.kill('SIGKILL');
    await exited(first.proc);
    const inFlight = count('start') - count('done');
    expect(count('done')).to.be.below(1000);

    await start(prefix);
    await eventually(() => new Set(lines(file).filter((l) => l.phase === 'done').map((l) => l.key)).size === 1000, 60_000, 'every change done');
    const all = lines(file);
    const starts = new Map<string, number>();
    for (const l of all) if (l.phase === 'start') starts.set(l.key, (starts.get(l.key) ?? 0) + 1);
    expect([...starts.keys()].sort()).to.deep.equal(ids);
    const twice = [...starts.values()].filter((n) => n > 1).length;
    // at most one batch was in flight when the runtime died: that one may run again, nothing else
    // what was in flight never finished, so it ran again; nothing beyond its batch did
    expect(twice).to.be.at.least(inFlight);
    expect(twice).to.be.at.most(kConcurrency);
    expect([...starts.values()].every((n) => n <= 2)).to.equal(true);
  });

  /** Two runtimes on a fresh prefix with one changes trigger on a new database: which one follows it, which stands by. */
  async function twoFollowingOne() {
    const prefix = fresh();
    const file = outFile();
    const db = `${prefix}inbox`;
    const nano = connect(couchUrl());
    await nano.db.create(db);
    const a = await start(prefix);
    const b = await start(prefix);
    await deploy(prefix, { _id: 'on_message', trigger: { changes: { db } }, workers: { recorder: { file } } });
    let holder: Instance | undefined;
    await eventually(async () => {
      const [sa, sb] = [await feedState(a, 'on_message'), await feedState(b, 'on_message')];
      holder = sa === 'running' && sb === 'standby' ? a : sb === 'running' && sa === 'standby' ? b : undefined;
      return holder !== undefined;
    }, 15_000, 'one running, one standing by');
    return { file, db, nano, holder: holder!, other: holder === a ? b : a };
  }

  it('two runtimes, one changes trigger: one follows, the other stands by; SIGKILL the follower and the other continues from the checkpoint', async () => {
    const { file, db, nano, holder, other } = await twoFollowingOne();
    await nano.use(db).bulk({ docs: Array.from({ length: 50 }, (_, i) => ({ _id: `a${i}` })) });
    await eventually(() => lines(file).filter((l) => l.phase === 'done').length === 50, 15_000, 'first 50 done');
    expect(new Set(lines(file).map((l) => l.pid))).to.deep.equal(new Set([holder.proc.pid]));
    // The checkpoint is written after the batch's workers are done, a moment after their last
    // line: killed before it, the other runtime would rightly run them again (at least once).
    await eventually(() => checkpointed(holder, 'on_message', nano, db), 10_000, 'the first 50 checkpointed');

    holder.proc.kill('SIGKILL');
    await exited(holder.proc);
    await nano.use(db).bulk({ docs: Array.from({ length: 50 }, (_, i) => ({ _id: `b${i}` })) });
    await eventually(() => new Set(lines(file).filter((l) => l.phase === 'done').map((l) => l.key)).size === 100, 20_000, 'the other continues');
    const later = lines(file).filter((l) => l.key.startsWith('b'));
    expect(new Set(later.map((l) => l.pid))).to.deep.equal(new Set([other.proc.pid]));
    // from the checkpoint: what the dead one had finished and checkpointed is not done again
    expect(lines(file).filter((l) => l.key.startsWith('a') && l.pid === other.proc.pid)).to.have.length(0);
    expect(await feedState(other, 'on_message')).to.equal('running');
  });

  it('a follower paused (SIGSTOP) past its lease is taken over, and once resumed fires nothing more', async () => {
    const { file, db, nano, holder, other } = await twoFollowingOne();
    await nano.use(db).insert({ _id: 'first' } as never);
    await eventually(() => lines(file).some((l) => l.key === 'first' && l.phase === 'done'), 10_000, 'first done');
    holder.proc.kill('SIGSTOP');
    try {
      // written while the holder is frozen, its longpoll waiting on the store
      await nano.use(db).bulk({ docs: Array.from({ length: 20 }, (_, i) => ({ _id: `p${i}` })) });
      await eventually(() => lines(file).filter((l) => l.key.startsWith('p') && l.phase === 'done').length === 20, 20_000, 'the other took over');
    } finally {
      holder.proc.kill('SIGCONT');
    }
    await nano.use(db).bulk({ docs: Array.from({ length: 20 }, (_, i) => ({ _id: `q${i}` })) });
    await eventually(() => lines(file).filter((l) => l.key.startsWith('q') && l.phase === 'done').length === 20, 20_000, 'q done');
    await eventually(async () => (await feedState(holder, 'on_message')) === 'standby', 10_000, 'the resumed one stands by');
    await new Promise((r) => setTimeout(r, 500));
    // the resumed runtime fired nothing after its pause: neither what its poll held nor anything later
    expect(lines(file).filter((l) => l.pid === holder.proc.pid).map((l) => l.key)).to.deep.equal(['first', 'first']);
    expect(new Set(lines(file).filter((l) => l.key !== 'first').map((l) => l.pid))).to.deep.equal(new Set([other.proc.pid]));
  });

  it('two runtimes, a 1 s schedule for 10 s: 9 to 11 firings in all, never two for one tick', async () => {
    const prefix = fresh();
    const file = outFile();
    const [a, b] = await Promise.all([start(prefix), start(prefix)]);
    await deploy(prefix, { _id: 'every_second', trigger: { schedule: { every: '1s' } }, workers: { recorder: { file } } });
    // both have loaded the event (it is listed by id on each), then ten seconds pass
    for (const i of [a, b]) {
      await eventually(async () => (await status<{ events: { loaded: number } }>(i)).events.loaded === 1, 10_000, 'event loaded');
    }
    const from = Date.now();
    await new Promise((r) => setTimeout(r, 10_000));
    const to = Date.now();
    // what fired for ticks inside the window
    await new Promise((r) => setTimeout(r, 500)); // the last tick's worker writes its line
    const fired = lines(file).filter((l) => l.phase === 'start').filter((l) => { const t = Date.parse(l.key); return t > from && t <= to; });
    expect(fired.length).to.be.within(9, 11);
    expect(new Set(fired.map((l) => l.key)).size).to.equal(fired.length);
    // and over the whole run, not one tick fired twice
    const everything = lines(file).filter((l) => l.phase === 'start').map((l) => l.key);
    expect(new Set(everything).size).to.equal(everything.length);
  });
});
