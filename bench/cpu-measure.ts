/**
 * CPU time per trigger of a server of ./target.ts under load, read from /proc (Linux only):
 * its threads' CPU and sleeps, its store's, the load generator's own (autocannon runs in the
 * calling process) and how busy the machine's cores were. Shared by cpu.ts and quick.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import autocannon from 'autocannon';
import { drained, status, type Target, type TargetStatus } from './targets.ts';

export interface TaskStat { cpuUs: number; sleeps: number }

/** utime + stime (clock ticks of 10 ms) and voluntary switches of each thread of `pid`, by thread id. */
/** CPU µs of a process's threads between two readings: all of them, the main one, the others (each), and sleeps. */
export function threadCpu(before: Map<number, TaskStat>, after: Map<number, TaskStat>, pid: number): { all: number; main: number; workers: number; each: number[]; sleeps: number } {
  let workers = 0, all = 0, sleeps = 0;
  const each: number[] = [];
  for (const [tid, a] of after) {
    const b = before.get(tid) ?? { cpuUs: 0, sleeps: 0 };
    all += a.cpuUs - b.cpuUs;
    sleeps += a.sleeps - b.sleeps;
    if (tid !== pid) { workers += a.cpuUs - b.cpuUs; if (a.cpuUs > b.cpuUs) each.push(a.cpuUs - b.cpuUs); }
  }
  return { all, main: after.get(pid)!.cpuUs - before.get(pid)!.cpuUs, workers, each, sleeps };
}

export function tasks(pid: number): Map<number, TaskStat> {
  const out = new Map<number, TaskStat>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      const sleeps = Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      out.set(Number(tid), { cpuUs: (Number(f[11]) + Number(f[12])) * 10_000, sleeps });
    } catch { /* the thread ended meanwhile */ }
  }
  return out;
}

/** Busy and total clock ticks of all cores together, from the first line of /proc/stat. */
export function machineTicks(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3]! - (f[4] ?? 0), total };
}

export function processCpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10_000;
}

/** Batches the runtime's thread pool has sent (the floor's status has none). */
export function threadBatches(s: TargetStatus): number | undefined {
  return s.dispatchers?.find((d) => d.name === 'thread')?.batches;
}

/** The median (the mean of the middle two for an even count). */
export const median = (xs: number[]) => { const v = [...xs].sort((a, b) => a - b); const m = v.length >> 1; return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2; };

export interface CpuSample {
  /** triggers counted: activations fired (a runtime, floor202) or 2xx answers. */
  triggers: number;
  reqPerSecond: number;
  /** triggers ÷ the time from the start of the load until the last one completed. */
  processedPerSecond: number;
  non2xx: number;
  /** µs per trigger. */
  mainThread: number;
  otherThreads: number;
  runtimeProcess: number;
  store: number;
  otherThreadsEach: number[];
  threadBatchesPer1000?: number;
  threadSleepsPer1000: number;
  /** the load generator's own CPU per request, µs. */
  loadGenerator: number;
  /** cores busy on the whole machine during the load (of os.cpus().length). */
  coresBusy: number;
}

export interface MeasureOptions {
  /** the server counts activations (GET /_lively/status): a runtime or floor202. */
  counts: boolean;
  /** the store process to add, when the server has one. */
  storePid?: number;
  connections?: number;
}

/**
 * Loads `url` for `seconds` and reads the CPU spent meanwhile; a server that counts activations
 * is read once every one fired has completed, so fire-and-forget's backlog is in its figure.
 */
export async function measureCpu(t: Target, url: string, seconds: number, opts: MeasureOptions): Promise<CpuSample> {
  const pid = t.proc.pid!;
  const s0 = opts.counts ? await drained(t, 20) : undefined;
  const before = { threads: tasks(pid), store: opts.storePid ? processCpuUs(opts.storePid) : 0, fired: s0?.activations.fired ?? 0, batches: s0 && threadBatches(s0) };
  const machine0 = machineTicks();
  const gen0 = process.cpuUsage();
  const t0 = performance.now();
  const load = await autocannon({ url, connections: opts.connections ?? 50, duration: seconds });
  const gen = process.cpuUsage(gen0);
  const machine = machineTicks();
  const s = opts.counts ? await drained(t, 20) : undefined;
  const elapsedS = Math.max(seconds, (performance.now() - t0) / 1000);
  const after = { threads: tasks(pid), store: opts.storePid ? processCpuUs(opts.storePid) : 0, fired: s?.activations.fired ?? load.requests.total, batches: s && threadBatches(s) };
  const n = after.fired - before.fired;
  const cores = (machine.busy - machine0.busy) / ((machine.total - machine0.total) / os.cpus().length);
  const { all, main, workers, each, sleeps } = threadCpu(before.threads, after.threads, pid);
  const per = (us: number) => Number((us / n).toFixed(1));
  return {
    triggers: n, reqPerSecond: Math.round(load.requests.average), processedPerSecond: Math.round(n / elapsedS), non2xx: load.non2xx,
    mainThread: per(main), otherThreads: per(workers), runtimeProcess: per(all), store: per(after.store - before.store),
    otherThreadsEach: each.sort((x, y) => y - x).map(per),
    ...(after.batches !== undefined ? { threadBatchesPer1000: Number(((after.batches - before.batches!) * 1000 / n).toFixed(0)) } : {}),
    threadSleepsPer1000: Number((sleeps * 1000 / n).toFixed(0)),
    loadGenerator: Number(((gen.user + gen.system) / load.requests.total).toFixed(1)),
    coresBusy: Number(cores.toFixed(2)),
  };
}

/** The store's pid of a runtime target (none for the floors and bare). */
export async function storePidOf(t: Target): Promise<number | undefined> {
  return (await status(t)).store?.pid;
}
