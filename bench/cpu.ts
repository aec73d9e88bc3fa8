/**
 * `npm run bench:cpu -- [path] [seconds]`: CPU time per trigger, which varies far less on a
 * shared machine than req/s. Starts the benchmark runtime (bench/target.ts runtime), loads
 * `path` with autocannon (50 connections), and reads each of its threads' CPU time and
 * voluntary context switches (sleeps) from /proc before and after, and the store process's.
 * Prints µs per trigger for the main thread, the other threads (worker threads, V8's GC
 * helpers, libuv's pool) together and each (busiest first: the worker threads, then V8's),
 * the whole runtime process and the store, the thread pool's batches and all threads' sleeps
 * per 1,000 triggers, and the responses other than 2xx. From V8's own trace of each collection (`--trace-gc-nvp`), it prints per trigger what
 * the main thread allocated, what of it survived a young-generation collection (copied, or
 * promoted to the old generation), and the collections' pauses: the figures that repeat best
 * from run to run on a shared machine. Linux only.
 *   path     default /_events/bench/thread?wait=true
 *   seconds  default 5
 * Extra node flags for the runtime (not for the load generator): BENCH_TARGET_FLAGS.
 * BENCH_TARGET=floor202 measures the floor of fire-and-forget instead (bench/floor.ts: node:http
 * and two worker threads, nothing of the runtime), the same way, for comparison; BENCH_TARGET=bare
 * the bare node:http server answering 200 (path ignored).
 *
 * It also prints the load generator's own CPU per request (autocannon runs in this process) and
 * how busy the machine's cores were, from /proc/stat: when every core is busy, the rate is about
 * cores ÷ (load generator + runtime + store CPU per request), which is how a per-trigger cost in
 * µs turns into req/s on a machine the load generator shares.
 */
import os from 'node:os';
import autocannon from 'autocannon';
import { request } from 'undici';
import { drained, startTarget, status, stopTarget } from './targets.ts';
import { machineTicks, processCpuUs, tasks, threadBatches, threadCpu } from './cpu-measure.ts';

const path = process.argv[2] ?? '/_events/bench/thread?wait=true';
const seconds = Number(process.argv[3] ?? 5);

/** `--trace-gc-nvp` lines seen while measuring (undefined: not measuring). */
let gcLines: string[] | undefined;

interface IsolateGc { allocated: number; survived: number; promoted: number; pauseMs: number; young: number; full: number }

/**
 * Sums the collections of each isolate (lines start `[pid:isolate]`); the main thread's isolate
 * is the one that allocated most. `survived`: bytes copied within or promoted out of the young
 * generation.
 */
function collections(lines: string[]): { main: IsolateGc; othersPauseMs: number } {
  const by = new Map<string, IsolateGc>();
  for (const line of lines) {
    const isolate = /^\[\d+:(0x[0-9a-f]+)\]/.exec(line)?.[1] ?? '?';
    const kv = new Map<string, string>();
    for (const part of line.split(/\s+/)) { const eq = part.indexOf('='); if (eq > 0) kv.set(part.slice(0, eq), part.slice(eq + 1)); }
    let g = by.get(isolate);
    if (!g) by.set(isolate, g = { allocated: 0, survived: 0, promoted: 0, pauseMs: 0, young: 0, full: 0 });
    const num = (k: string) => Number(kv.get(k) ?? 0) || 0;
    g.allocated += num('allocated');
    g.promoted += num('promoted');
    g.survived += num('new_space_survived') + num('promoted');
    g.pauseMs += num('pause');
    if (kv.get('gc') === 's') g.young++; else g.full++;
  }
  let main: IsolateGc = { allocated: 0, survived: 0, promoted: 0, pauseMs: 0, young: 0, full: 0 };
  let othersPauseMs = 0;
  for (const g of by.values()) if (g.allocated > main.allocated) main = g;
  for (const g of by.values()) if (g !== main) othersPauseMs += g.pauseMs;
  return { main, othersPauseMs };
}

async function main(): Promise<void> {
  if (process.platform !== 'linux') throw new Error('bench:cpu reads /proc: Linux only');
  const flags = (process.env.BENCH_TARGET_FLAGS ?? '').split(' ').filter(Boolean);
  const mode = process.env.BENCH_TARGET ?? 'runtime';
  if (mode !== 'runtime' && mode !== 'floor202' && mode !== 'bare') throw new Error(`BENCH_TARGET: runtime, floor202 or bare, not ${mode}`);
  const bare = mode === 'bare';
  const t = await startTarget(mode, { nodeFlags: ['--trace-gc-nvp', ...flags], onLine: (line) => { if (gcLines && line.includes(' pause=')) gcLines.push(line); } });
  const target = t.proc;
  try {
    const url = t.url;
    const storePid = bare ? undefined : (await status(t)).store?.pid;
    await (await request(url + path)).body.dump();
    await autocannon({ url: url + path, connections: 50, duration: 2 });
    gcLines = [];
    const s0 = bare ? undefined : await status(t);
    const before = { threads: tasks(target.pid!), store: storePid ? processCpuUs(storePid) : 0, fired: s0?.activations.fired ?? 0, batches: s0 && threadBatches(s0) };
    const machine0 = machineTicks();
    const gen0 = process.cpuUsage();
    const load = await autocannon({ url: url + path, connections: 50, duration: seconds });
    const gen = process.cpuUsage(gen0);
    const machine = machineTicks();
    const s = bare ? undefined : await drained(t, 50);
    const after = { threads: tasks(target.pid!), store: storePid ? processCpuUs(storePid) : 0, fired: s?.activations.fired ?? load.requests.total, batches: s && threadBatches(s) };
    const gc = collections(gcLines);
    gcLines = undefined;
    const n = after.fired - before.fired;
    const cores = (machine.busy - machine0.busy) / ((machine.total - machine0.total) / os.cpus().length);
    const { all, main, workers, each, sleeps } = threadCpu(before.threads, after.threads, target.pid!);
    const per = (us: number) => Number((us / n).toFixed(1));
    console.log(JSON.stringify({
      target: mode, path: bare ? '/' : path, seconds, triggers: n, reqPerSecond: Math.round(load.requests.average), non2xx: load.non2xx,
      cpuUsPerTrigger: { mainThread: per(main), otherThreads: per(workers), runtimeProcess: per(all), store: per(after.store - before.store) },
      loadGeneratorCpuUsPerRequest: Number(((gen.user + gen.system) / load.requests.total).toFixed(1)),
      coresBusy: `${cores.toFixed(2)} of ${os.cpus().length}`,
      otherThreadsEach: each.sort((x, y) => y - x).map(per),
      ...(after.batches !== undefined ? { threadBatchesPer1000: Number(((after.batches - before.batches!) * 1000 / n).toFixed(0)) } : {}),
      threadSleepsPer1000: Number((sleeps * 1000 / n).toFixed(0)),
      mainThreadGcPerTrigger: {
        allocatedBytes: Math.round(gc.main.allocated / n), survivedBytes: Math.round(gc.main.survived / n),
        promotedBytes: Math.round(gc.main.promoted / n), pauseUs: per(gc.main.pauseMs * 1000),
        youngCollections: gc.main.young, fullCollections: gc.main.full,
      },
      workerThreadsGcPauseUsPerTrigger: per(gc.othersPauseMs * 1000),
    }, null, 2));
  } finally {
    await stopTarget(t);
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
