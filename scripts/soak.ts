/**
 * `npm run soak [-- --minutes 10 --rate 3000]`: a runtime (`livelycouch start`, its own process)
 * on an embedded store on disk (its own process), with a changes trigger fed `rate` documents a
 * second and a 1 s schedule, for `minutes`. Each minute it prints the RSS of the runtime and of
 * the store, the size of the state database (`<prefix>logs`), errors logged and how far the
 * changes trigger is behind; at the end, after the backlog drains, changes lost and ticks fired
 * twice or not at all. Expected: RSS and state size flat (±10 % after warm-up), zero errors,
 * zero lost. RSS is shown as anonymous + file-backed pages (see rssOf); exits 1 when something
 * was lost or fired twice, an error was logged, or memory or the state database grew.
 * Defaults: 10 minutes at 3,000 changes/s, half the peak measured for a changes trigger (README).
 * Env SOAK_MINUTES and SOAK_RATE as well; LIVELY_LEASE_MS is passed on. `--couch URL` (SOAK_COUCH_URL)
 * soaks on a CouchDB instead (`--store-pid` for its RSS); the state database's size is then
 * CouchDB's `sizes.file`, else the embedded store's directory on disk.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connect } from '../src/store/couch.ts';
import { EmbeddedStore } from '../src/store/embedded/supervisor.ts';

const { values } = parseArgs({ options: { minutes: { type: 'string' }, rate: { type: 'string' }, couch: { type: 'string' }, 'store-pid': { type: 'string' } } });
/** a CouchDB to soak on instead of an embedded store (its pid, when local, for its RSS). */
const couchArg = values.couch ?? process.env.SOAK_COUCH_URL;
const storePidArg = values['store-pid'] ?? process.env.SOAK_STORE_PID;
const minutes = Number(values.minutes ?? process.env.SOAK_MINUTES ?? 10);
const rate = Number(values.rate ?? process.env.SOAK_RATE ?? 3_000);
const main = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Rss { total: number; anon: number; file: number }

/**
 * A process's resident memory in MB: all of it, and its anonymous part (heap, stacks, what it
 * allocated) apart from file-backed pages. The embedded store's LevelDB maps its table files
 * into memory, so every page of the database it reads counts in its RSS as a file page: the
 * kernel's cache of the data, shared and dropped under memory pressure, growing with the data
 * read. Memory the process holds is the anonymous part, which is what must stay flat.
 */
function rssOf(pid: number | undefined): Rss | undefined {
  if (!pid) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) / 1024;
    return { total: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') + kb('RssShmem') };
  } catch { return undefined; }
}
const shown = (r: Rss | undefined) => (r ? `${r.total.toFixed(0)} (${r.anon.toFixed(0)} + ${r.file.toFixed(0)})` : 'n/a');

function duKb(dir: string): number {
  try { return Number(execFileSync('du', ['-sk', dir], { encoding: 'utf8' }).split('\t')[0]); } catch { return NaN; }
}

function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

const att = (code: string) => ({ 'index.js': { content_type: 'application/javascript', data: Buffer.from(code).toString('base64') } });
const recorder = {
  _id: 'recorder', type: 'node', delegate: 'index.js', _attachments: att(`const fs = require('node:fs');
module.exports = async (msg) => {
  fs.appendFileSync(msg.arguments.file, (msg.trigger === 'schedule' ? msg.tick.at : msg.parameters.id) + '\\n');
  return {};
};`),
};

const kWarmupMinutes = 2;

/**
 * Flat: after the warm-up (the first two minutes: thread pools, caches and the JIT settle, a
 * feed catches up with its first backlog), no minute's anonymous memory of either process is
 * more than 10 % above its median over those minutes. A minute below it is memory a collection
 * gave back, not growth: it is shown, not failed. The state database is bounded: its largest
 * size in the second half of the run is at most 10 % above the largest in the first (it is a
 * sawtooth: LevelDB or CouchDB's compaction merges the checkpoint's overwrites).
 */
function flatness(samples: Array<{ runtime?: Rss; store?: Rss; stateKb: number }>): { ok: boolean; lines: string[] } {
  const lines: string[] = [];
  let ok = true;
  const after = samples.slice(kWarmupMinutes);
  if (after.length < 3) return { ok: true, lines: [`flat: too short a run to tell (${kWarmupMinutes + 3} minutes at least)`] };
  for (const who of ['runtime', 'store'] as const) {
    const xs = after.map((s) => s[who]?.anon).filter((x): x is number => x !== undefined && Number.isFinite(x));
    if (xs.length < after.length) { lines.push(`flat: ${who} anonymous RSS not read (not a local process)`); continue; }
    const sorted = [...xs].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    const lo = sorted[0]!;
    const hi = sorted[sorted.length - 1]!;
    const within = hi <= median * 1.1;
    ok &&= within;
    const files = after.map((s) => s[who]?.file ?? 0);
    lines.push(`flat: ${who} anonymous RSS ${lo.toFixed(0)}–${hi.toFixed(0)} MB after minute ${kWarmupMinutes}, at most ${((hi / median - 1) * 100).toFixed(1)} % above its median ${median.toFixed(0)} MB: ${within ? 'flat' : 'NOT flat (more than +10 %)'}; file pages ${Math.min(...files).toFixed(0)}–${Math.max(...files).toFixed(0)} MB`);
  }
  const half = Math.ceil(samples.length / 2);
  const first = Math.max(...samples.slice(0, half).map((s) => s.stateKb));
  const second = Math.max(...samples.slice(half).map((s) => s.stateKb));
  const bounded = !(second > first * 1.1);
  ok &&= bounded;
  lines.push(`flat: state database at most ${first} KB in the first half, ${second} KB in the second: ${bounded ? 'bounded' : 'NOT bounded'}`);
  return { ok, lines };
}

async function run(): Promise<void> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'lively-soak-'));
  const storeDir = path.join(work, 'store-data');
  const store = couchArg ? undefined : new EmbeddedStore({ dataDir: storeDir });
  await store?.start();
  const storeUrl = couchArg ?? store!.url;
  const storePid = store?.pid ?? (storePidArg ? Number(storePidArg) : undefined);
  const prefix = `soak${Date.now().toString(36)}_`;
  const server = connect(storeUrl);
  const changesFile = path.join(work, 'changes.txt');
  const ticksFile = path.join(work, 'ticks.txt');
  let errors = 0;
  const rt = spawn(process.execPath, ['--no-node-snapshot', '--import', 'tsx', main, 'start', '--couch', storeUrl, '--prefix', prefix,
    '--port', '0', '--data', path.join(work, 'rt'), '--no-sample', '--log-level', 'warn'],
  { env: { ...process.env, LIVELY_LOG_FORMAT: 'json' }, stdio: ['ignore', 'pipe', 'pipe'] });
  createInterface({ input: rt.stderr! }).on('line', (line) => {
    if (/"level":"error"/.test(line)) { errors++; if (errors <= 5) console.log(`  runtime error: ${line.slice(0, 300)}`); }
  });
  await new Promise<void>((resolve, reject) => {
    rt.once('exit', (code) => reject(new Error(`the runtime exited with ${code}`)));
    createInterface({ input: rt.stdout! }).on('line', (line) => { if (/listening on/.test(line)) resolve(); });
  });
  try {
    await server.db.create(`${prefix}inbox`);
    await server.use(`${prefix}workers`).insert(recorder as never);
    await server.use(`${prefix}events`).insert({ _id: 'on_change', trigger: { changes: { db: `${prefix}inbox` } }, workers: { recorder: { file: changesFile } } } as never);
    await server.use(`${prefix}events`).insert({ _id: 'tick', trigger: { schedule: { every: '1s' } }, workers: { recorder: { file: ticksFile } } } as never);
    await sleep(3_000); // the feed takes its lease and its first checkpoint
    console.log(`soak: ${minutes} min, ${rate} changes/s into ${prefix}inbox, a 1 s schedule; runtime pid ${rt.pid}, store ${couchArg ? 'CouchDB' : 'embedded'} pid ${storePid ?? 'n/a'}`);
    console.log('minute | runtime RSS MB (anon + file) | store RSS MB (anon + file) | state db KB | errors | written | fired | behind');
    const samples: Array<{ runtime?: Rss; store?: Rss; stateKb: number }> = [];
    let written = 0;
    let writing = true;
    const inbox = server.use(`${prefix}inbox`);
    const writer = (async () => {
      const per = Math.max(1, Math.round(rate / 10));
      for (let next = Date.now(); writing; next += 100) {
        const docs = Array.from({ length: per }, () => ({ _id: `c${(written++).toString(36).padStart(8, '0')}` }));
        await inbox.bulk({ docs }).catch(() => { written -= per; });
        const wait = next + 100 - Date.now();
        if (wait > 0) await sleep(wait);
      }
    })();
    const t0 = Date.now();
    const stateDir = path.join(storeDir, 'store', `${prefix}logs`);
    const stateKb = async () => {
      const info = (await server.db.get(`${prefix}logs`).catch(() => ({}))) as { sizes?: { file?: number } };
      return info.sizes?.file !== undefined ? Math.round(info.sizes.file / 1024) : duKb(stateDir);
    };
    for (let m = 1; m <= minutes; m++) {
      await sleep(t0 + m * 60_000 - Date.now());
      const fired = lines(changesFile).length;
      const sample = { runtime: rssOf(rt.pid), store: rssOf(storePid), stateKb: await stateKb() };
      samples.push(sample);
      console.log(`${String(m).padStart(6)} | ${shown(sample.runtime).padStart(26)} | ${shown(sample.store).padStart(24)} | ${String(sample.stateKb).padStart(11)} | ${String(errors).padStart(6)} | ${String(written).padStart(7)} | ${String(fired).padStart(7)} | ${written - fired}`);
    }
    writing = false;
    await writer;
    const end = Date.now();
    // drained: all fired, or nothing more fired for 15 s (what is left then is lost)
    for (let last = -1, still = Date.now(); new Set(lines(changesFile)).size < written && Date.now() - still < 15_000; await sleep(500)) {
      const n = lines(changesFile).length;
      if (n !== last) { last = n; still = Date.now(); }
    }
    const fired = lines(changesFile);
    const distinct = new Set(fired);
    const ticks = lines(ticksFile);
    const tickSet = new Set(ticks);
    let missingTicks = 0;
    for (let t = Math.ceil((t0 + 2_000) / 1000) * 1000; t <= end - 2_000; t += 1000) if (!tickSet.has(new Date(t).toISOString())) missingTicks++;
    const lost = written - distinct.size;
    console.log(`end (drained ${((Date.now() - end) / 1000).toFixed(0)} s after writing stopped): ${written} changes written, ${distinct.size} fired (${fired.length - distinct.size} twice), lost ${lost}; ${tickSet.size} ticks, ${ticks.length - tickSet.size} twice, ${missingTicks} not fired; errors ${errors}`);
    const flat = flatness(samples);
    for (const line of flat.lines) console.log(line);
    process.exitCode = lost === 0 && ticks.length === tickSet.size && missingTicks === 0 && errors === 0 && flat.ok ? 0 : 1;
  } finally {
    rt.kill('SIGTERM');
    await new Promise((r) => (rt.exitCode !== null ? r(null) : rt.once('exit', r)));
    await store?.stop();
    if (couchArg) for (const db of await server.db.list()) if (db.startsWith(prefix)) await server.db.destroy(db).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
}

await run();
