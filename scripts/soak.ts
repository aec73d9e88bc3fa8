/**
 * `npm run soak [-- --minutes 10 --rate 3000]`: a runtime (`livelycouch start`, its own process)
 * on an embedded store on disk (its own process), with a changes trigger fed `rate` documents a
 * second and a 1 s schedule, for `minutes`. Each minute it prints the RSS of the runtime and of
 * the store, the size of the state database (`<prefix>logs`), errors logged and how far the
 * changes trigger is behind; at the end, after the backlog drains, changes lost and ticks fired
 * twice or not at all. Expected: RSS and state size flat (±10 % after warm-up), zero errors,
 * zero lost. Exits 1 when something was lost or fired twice.
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

function rssMb(pid: number | undefined): string {
  if (!pid) return 'n/a';
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? (Number(m[1]) / 1024).toFixed(0) : 'n/a';
  } catch { return 'gone'; }
}

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
    console.log('minute | runtime RSS MB | store RSS MB | state db KB | errors | written | fired | behind');
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
      console.log(`${String(m).padStart(6)} | ${rssMb(rt.pid).padStart(14)} | ${rssMb(storePid).padStart(12)} | ${String(await stateKb()).padStart(11)} | ${String(errors).padStart(6)} | ${String(written).padStart(7)} | ${String(fired).padStart(7)} | ${written - fired}`);
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
    process.exitCode = lost === 0 && ticks.length === tickSet.size && missingTicks === 0 ? 0 : 1;
  } finally {
    rt.kill('SIGTERM');
    await new Promise((r) => (rt.exitCode !== null ? r(null) : rt.once('exit', r)));
    await store?.stop();
    if (couchArg) for (const db of await server.db.list()) if (db.startsWith(prefix)) await server.db.destroy(db).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
}

await run();
