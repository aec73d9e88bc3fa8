/**
 * Dispatcher-level throughput of a trivial handler worker: ThreadDispatcher (batches down each
 * thread's own port) against one piscina `pool.run` per message. Besides messages per second it
 * reports CPU time per message — of the main thread (from /proc, Linux only) and of the whole
 * process — which varies far less than rates on a shared machine. Short, bounded runs; prints JSON.
 *   node --no-node-snapshot --import tsx bench/thread.ts [seconds=2] [inflight=50]
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Piscina } from 'piscina';
import { ThreadDispatcher } from '../src/workers/dispatch/thread.ts';
import type { WorkerSpec } from '../src/workers/revision.ts';

const seconds = Math.min(10, Number(process.argv[2] ?? 2));
const inflight = Math.min(500, Number(process.argv[3] ?? 50));
const threads = os.availableParallelism();
const dir = mkdtempSync(path.join(os.tmpdir(), 'lc-bench-thread-'));

/** CPU µs of the main thread so far (its /proc task stat: utime + stime in clock ticks of 10 ms); NaN off Linux. */
function mainThreadCpuUs(): number {
  try {
    const f = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) * 10_000;
  } catch { return NaN; }
}

function processCpuUs(): number { const u = process.cpuUsage(); return u.user + u.system; }

async function measure(name: string, once: () => Promise<unknown>): Promise<Record<string, unknown>> {
  const main0 = mainThreadCpuUs(), all0 = processCpuUs();
  const end = performance.now() + seconds * 1000;
  let done = 0;
  const lat: number[] = [];
  await Promise.all(Array.from({ length: inflight }, async () => {
    while (performance.now() < end) {
      const t = performance.now();
      await once();
      lat.push(performance.now() - t);
      done++;
    }
  }));
  lat.sort((a, b) => a - b);
  const q = (p: number) => Number(lat[Math.floor(p * (lat.length - 1))]!.toFixed(3));
  const perMessage = (us: number) => Number((us / done).toFixed(2));
  return { name, perSecond: Math.round(done / seconds), p50ms: q(0.5), p99ms: q(0.99), mainCpuUsPerMessage: perMessage(mainThreadCpuUs() - main0), processCpuUsPerMessage: perMessage(processCpuUs() - all0) };
}

const spec: WorkerSpec = {
  id: 'bench', rev: '1-bench', type: 'node', isolation: 'thread', delegate: 'main.js',
  attachments: { 'main.js': { contentType: 'application/javascript', data: Buffer.from('module.exports = (m) => m.parameters.n;') } },
  arguments: {}, env: {}, couch: false, limits: { timeout: 30_000, concurrency: 1000, idle: 60_000 },
};

const d = new ThreadDispatcher({ cacheDir: dir, threads });
let n = 0;
const msg = () => ({ activation: `a${++n}`, event: 'e', worker: 'bench', trigger: 'http' as const, arguments: {}, parameters: { n } });
await d.dispatch({ spec, message: msg(), onEmit() {} });
const batched = await measure('ThreadDispatcher (batched)', () => d.dispatch({ spec, message: msg(), onEmit() {} }));
await d.close(1000);

const task = path.join(dir, 'task.mjs');
writeFileSync(task, 'export default (m) => m.parameters.n;');
const pool = new Piscina({ filename: task, minThreads: threads, maxThreads: threads, atomics: 'disabled', concurrentTasksPerWorker: 16 });
await pool.run(msg());
const perRun = await measure('one pool.run per message', () => pool.run(msg()));
await pool.destroy();
rmSync(dir, { recursive: true, force: true });

console.log(JSON.stringify({ machine: `${os.cpus()[0]?.model} x${os.cpus().length}, node ${process.version}`, threads, inflight, seconds, results: [batched, perRun] }, null, 2));
