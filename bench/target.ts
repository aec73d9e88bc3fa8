/**
 * One server under test per process, so the load generator (bench/run.ts) never shares
 * an event loop with it. Prints `READY <url>` when it serves.
 *   bare        node:http answering 200: the ceiling
 *   runtime     LivelyCouch on an embedded store with bench/app deployed (in memory; on disk with BENCH_STORE=disk;
 *               on a CouchDB with BENCH_COUCH_URL=<admin url>, its databases under a prefix of their own;
 *               BENCH_RECORDS=off keeps no activation records; BENCH_CONCURRENCY=n sets workers' default concurrency;
 *               on disk, LIVELY_STORE_SYNC=0 leaves writes unsynced)
 *   persistent  scenario (d0), the minimal stand-in for the 2010 design once warm: one child
 *               process fed JSON lines, answering each, behind node:http with no runtime around it
 *   fresh       the 2010 design cold: a new `node` process per trigger
 *   floor       the floor of the thread-pool design, no runtime around it (./floor.ts): node:http
 *               and two worker threads, each request answered with its outcome; floor202 answers
 *               202 at once; floor-ring uses SharedArrayBuffer rings instead of MessagePorts
 */
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { makeConfig } from '../src/config/index.ts';
import { Runtime } from '../src/runtime.ts';
import { createLogger } from '../src/shared/logger.ts';
import type { DispatchContext, Dispatcher, DispatcherStats } from '../src/workers/dispatcher.ts';
import type { WorkerSpec } from '../src/workers/revision.ts';
import type { WorkerOutcome } from '../src/shared/message.ts';
import { deployDir } from '../src/core/deploy.ts';
import { basicAuthOf } from '../src/store/couch.ts';
import { floorServer } from './floor.ts';
import { builtStore } from './built-store.ts';

const mode = process.argv[2];
const CHILD = `const rl=require('readline').createInterface({input:process.stdin});rl.on('line',l=>{const m=JSON.parse(l);process.stdout.write(JSON.stringify({result:{ok:true,n:m.n??null}})+'\\n')})`;

function listen(server: http.Server): void {
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as { port: number };
    process.stdout.write(`READY http://127.0.0.1:${port}\n`);
  });
}

/**
 * Answers workers of type "noop" at once: the runtime's whole path (HTTP, matching, gate,
 * activation record) without any worker, so the cost of the worker hop shows by difference.
 */
class ImmediateDispatcher implements Dispatcher {
  readonly name = 'immediate';
  serves(spec: WorkerSpec): boolean { return spec.type === 'noop'; }
  async dispatch(ctx: DispatchContext): Promise<WorkerOutcome> {
    return { worker: ctx.spec.id, status: 'ok', result: { ok: true }, logs: [], durationMs: 0 };
  }
  async retire(): Promise<void> {}
  stats(): DispatcherStats { return { name: this.name, warm: 0, inFlight: 0 }; }
  async close(): Promise<void> {}
}

async function main(): Promise<void> {
  if (mode === 'bare') {
    listen(http.createServer((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"ok":true}'); }));
  } else if (mode === 'floor' || mode === 'floor202' || mode === 'floor-ring') {
    listen(floorServer(mode === 'floor' ? 'port' : mode === 'floor202' ? 'port202' : 'ring'));
    // The same profiles as the runtime's, so that the two can be compared function by function.
    const profile = await startProfile();
    process.on('SIGTERM', () => { void profile().then(() => process.exit(0)); });
  } else if (mode === 'persistent') {
    const child = spawn(process.execPath, ['-e', CHILD], { stdio: ['pipe', 'pipe', 'inherit'] });
    const waiting: Array<(line: string) => void> = [];
    createInterface({ input: child.stdout! }).on('line', (line) => waiting.shift()?.(line));
    let n = 0;
    listen(http.createServer((req, res) => {
      req.resume();
      waiting.push((line) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(line); });
      child.stdin!.write(JSON.stringify({ n: n++, path: req.url }) + '\n');
    }));
  } else if (mode === 'fresh') {
    listen(http.createServer((req, res) => {
      req.resume();
      const child = spawn(process.execPath, ['-e', CHILD], { stdio: ['pipe', 'pipe', 'inherit'] });
      let out = '';
      child.stdout!.on('data', (d) => { out += d; });
      child.on('exit', () => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(out.trim()); });
      child.stdin!.end(JSON.stringify({ n: 0 }) + '\n');
    }));
  } else if (mode === 'runtime') {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lively-bench-'));
    // BENCH_COUCH_URL=<admin url>: on that CouchDB instead, under a prefix of its own, dropped at the end
    const couch = process.env.BENCH_COUCH_URL ? { couchUrl: process.env.BENCH_COUCH_URL, dbPrefix: `bench${Date.now().toString(36)}_` } : {};
    const config = makeConfig({ ...couch, port: 0, dataDir, embeddedMemory: process.env.BENCH_STORE !== 'disk', storeSync: process.env.LIVELY_STORE_SYNC !== '0', sample: false, logLevel: (process.env.LIVELY_LOG_LEVEL as 'warn') || 'warn', maxQueue: 1_000_000, maxWorkerQueue: 1_000_000, threads: Number(process.env.LIVELY_THREADS) || os.availableParallelism(), logRecords: process.env.BENCH_RECORDS !== 'off', ...(process.env.BENCH_CONCURRENCY ? { workerConcurrency: Number(process.env.BENCH_CONCURRENCY) } : {}) });
    const logger = createLogger(config.logLevel);
    // the store users run (bench/built-store.ts); the runtime stops it
    const store = config.couchUrl ? undefined : builtStore({ dataDir, memory: config.embeddedMemory, sync: config.storeSync, logger }).then(async (s) => { await s.start(); return s; });
    const rt = await new Runtime({ config, logger, dispatchers: [new ImmediateDispatcher()], ...(store ? { store } : {}) }).start();
    await deployDir(fileURLToPath(new URL('./app', import.meta.url)), rt.db.events, rt.db.workers);
    const events = readdirSync(new URL('./app/events', import.meta.url)).length;
    for (;;) { if (rt.catalog.matcher.size >= events) break; await new Promise((r) => setTimeout(r, 20)); }
    const profile = await startProfile();
    const admin = new URL(rt.couchUrl);
    const auth = basicAuthOf(admin)!.slice('Basic '.length);
    process.stdout.write(`READY ${rt.url} ${auth}\n`);
    const dropOwn = async () => {
      if (!couch.dbPrefix) return;
      for (const db of await rt.nano.db.list()) if (db.startsWith(couch.dbPrefix)) await rt.nano.db.destroy(db);
    };
    // the data directory goes with the run (a disk store's files, the instance name, bundles)
    process.on('SIGTERM', () => { void profile().then(() => rt.stop(2_000)).then(dropOwn).then(() => rmSync(dataDir, { recursive: true, force: true })).then(() => process.exit(0)); });
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
}

/**
 * BENCH_PROFILE=<file>: a CPU profile of the main thread (the runtime's, or the floor's), written on SIGTERM.
 * BENCH_HEAPPROF=<file>: instead, a sampling heap profile of what the main thread allocated
 * and a young-generation collection did not free (it outlived one): where survivors come from.
 * With BENCH_HEAPPROF_ALL=1, of everything it allocated: where the allocation per trigger comes from.
 */
async function startProfile(): Promise<() => Promise<void>> {
  const heapFile = process.env.BENCH_HEAPPROF;
  const cpuFile = process.env.BENCH_PROFILE;
  if (!heapFile && !cpuFile) return async () => {};
  const { Session } = await import('node:inspector/promises');
  const { writeFileSync } = await import('node:fs');
  const session = new Session();
  session.connect();
  if (heapFile) {
    await session.post('HeapProfiler.enable');
    await session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMinorGC: process.env.BENCH_HEAPPROF_ALL === '1', includeObjectsCollectedByMajorGC: true } as never);
    return async () => {
      const { profile } = await session.post('HeapProfiler.stopSampling');
      writeFileSync(heapFile, JSON.stringify(profile));
    };
  }
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(cpuFile!, JSON.stringify(profile));
  };
}

main().catch((err) => { console.error(err); process.exit(1); });
