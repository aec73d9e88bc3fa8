/**
 * `node --no-node-snapshot --import tsx bench/process-cpu.ts [seconds] [rounds] [keys]`: where the
 * CPU of a process or isolate worker's message goes, by process, next to its stand-ins. Each
 * scenario is loaded with autocannon (50 connections, ?wait=true) in turn, rounds interleaved;
 * for each, from /proc before and after: the server's main thread and its other threads, its
 * worker processes (children other than the store and the watchdog), the store, and this
 * process (the load generator), as µs of CPU per request, with read/write system calls and
 * sleeps (voluntary context switches) per request. Medians over rounds. Linux only.
 *   keys   default d0,d,py,iso,c (d0: bench/target.ts persistent; the rest: the runtime's bench app)
 */
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import autocannon from 'autocannon';
import { request } from 'undici';
import { startTarget, status, stopTarget, type Target } from './targets.ts';

const seconds = Number(process.argv[2] ?? 5);
const rounds = Number(process.argv[3] ?? 3);
const keys = (process.argv[4] ?? 'd0,d,py,iso,c').split(',');

const kPaths: Record<string, string> = {
  d: '/_events/bench/process?wait=true',
  dp: '/_events/bench/process_pipe?wait=true',
  py: '/_events/bench/python?wait=true',
  pyp: '/_events/bench/python_pipe?wait=true',
  iso: '/_events/bench/isolate?wait=true',
  c: '/_events/bench/thread?wait=true',
};

interface Usage { cpuUs: number; sys: number; sleeps: number }
const zero = (): Usage => ({ cpuUs: 0, sys: 0, sleeps: 0 });

function stat(file: string): { cpuUs: number; ppid: number } {
  const s = readFileSync(file, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { cpuUs: (Number(f[11]) + Number(f[12])) * 10_000, ppid: Number(f[1]) };
}

function usageOf(dir: string): Usage {
  const { cpuUs } = stat(`${dir}/stat`);
  const st = readFileSync(`${dir}/status`, 'utf8');
  let sys = 0;
  try {
    const io = readFileSync(`${dir}/io`, 'utf8');
    sys = Number(/^syscr:\s+(\d+)/m.exec(io)?.[1] ?? 0) + Number(/^syscw:\s+(\d+)/m.exec(io)?.[1] ?? 0);
  } catch { /* not ours to read */ }
  return { cpuUs, sys, sleeps: Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(st)?.[1] ?? 0) };
}

/** pid → ppid of every process. */
function processTable(): Map<number, number> {
  const out = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try { out.set(Number(name), stat(`/proc/${name}/stat`).ppid); } catch { /* gone */ }
  }
  return out;
}

interface Snapshot { main: Usage; threads: Usage; workers: Usage; store: Usage; watchdog: Usage; workerPids: number }

function snapshot(pid: number, storePid?: number): Snapshot {
  const s: Snapshot = { main: zero(), threads: zero(), workers: zero(), store: zero(), watchdog: zero(), workerPids: 0 };
  const add = (to: Usage, u: Usage) => { to.cpuUs += u.cpuUs; to.sys += u.sys; to.sleeps += u.sleeps; };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try { add(Number(tid) === pid ? s.main : s.threads, usageOf(`/proc/${pid}/task/${tid}`)); } catch { /* ended */ }
  }
  // the server's process I/O counters are per process: charged to the main thread
  try { s.main.sys = usageOf(`/proc/${pid}`).sys; } catch { /* gone */ }
  const table = processTable();
  const under = (p: number): boolean => { for (let q = table.get(p); q !== undefined && q > 1; q = table.get(q)) if (q === pid) return true; return false; };
  for (const p of table.keys()) {
    if (!under(p)) continue;
    try {
      const u = usageOf(`/proc/${p}`);
      // a child's own children (a store's, a shell's) count with it
      if (p === storePid || (storePid !== undefined && table.get(p) === storePid)) add(s.store, u);
      else if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('watchdog')) add(s.watchdog, u);
      else { add(s.workers, u); s.workerPids++; }
    } catch { /* ended */ }
  }
  return s;
}

function machineTicks(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3]! - (f[4] ?? 0), total };
}

interface Row { rps: number; main: number; threads: number; workers: number; store: number; watchdog: number; gen: number; total: number; serverSys: number; workerSys: number; serverSleeps: number; workerSleeps: number; workerPids: number; cores: number; non2xx: number }

async function measure(t: Target, path: string, storePid?: number): Promise<Row> {
  const url = t.url + path;
  const b = snapshot(t.proc.pid!, storePid);
  const m0 = machineTicks();
  const g0 = process.cpuUsage();
  const r = await autocannon({ url, connections: 50, duration: seconds });
  const g = process.cpuUsage(g0);
  const m1 = machineTicks();
  const a = snapshot(t.proc.pid!, storePid);
  const n = r.requests.total;
  const per = (x: number) => +(x / n).toFixed(1);
  const d = (k: keyof Omit<Snapshot, 'workerPids'>, f: keyof Usage) => a[k][f] - b[k][f];
  const gen = (g.user + g.system);
  const total = d('main', 'cpuUs') + d('threads', 'cpuUs') + d('workers', 'cpuUs') + d('store', 'cpuUs') + d('watchdog', 'cpuUs') + gen;
  return {
    rps: Math.round(r.requests.average), main: per(d('main', 'cpuUs')), threads: per(d('threads', 'cpuUs')), workers: per(d('workers', 'cpuUs')),
    store: per(d('store', 'cpuUs')), watchdog: per(d('watchdog', 'cpuUs')), gen: per(gen), total: per(total),
    serverSys: +(d('main', 'sys') / n).toFixed(2), workerSys: +(d('workers', 'sys') / n).toFixed(2),
    serverSleeps: +((d('main', 'sleeps') + d('threads', 'sleeps')) / n).toFixed(2), workerSleeps: +(d('workers', 'sleeps') / n).toFixed(2),
    workerPids: a.workerPids,
    cores: +((m1.busy - m0.busy) / ((m1.total - m0.total) / os.cpus().length)).toFixed(2), non2xx: r.non2xx + r.errors,
  };
}

const median = (xs: number[]) => { const s = [...xs].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]!; };

async function main(): Promise<void> {
  if (process.platform !== 'linux') throw new Error('reads /proc: Linux only');
  const needsRuntime = keys.some((k) => k !== 'd0');
  const rt = needsRuntime ? await startTarget('runtime') : undefined;
  const d0 = keys.includes('d0') ? await startTarget('persistent') : undefined;
  try {
    const storePid = rt ? (await status(rt)).store?.pid : undefined;
    const targetOf = (k: string): [Target, string] => k === 'd0' ? [d0!, '/'] : [rt!, kPaths[k] ?? (() => { throw new Error(`unknown key ${k}`); })()];
    // warm: every worker's processes started, isolate loaded, JIT warm
    for (const k of keys) {
      const [t, p] = targetOf(k);
      await Promise.all(Array.from({ length: 8 }, async () => { const res = await request(t.url + p); await res.body.dump(); }));
      await autocannon({ url: t.url + p, connections: 50, duration: 1 });
    }
    const rows = new Map<string, Row[]>();
    const load0 = os.loadavg();
    for (let round = 0; round < rounds; round++) {
      for (const k of keys) {
        const [t, p] = targetOf(k);
        const r = await measure(t, p, t === rt ? storePid : undefined);
        (rows.get(k) ?? rows.set(k, []).get(k)!).push(r);
        process.stderr.write(`round ${round + 1} ${k}: ${JSON.stringify(r)}\n`);
      }
    }
    const out: Record<string, Record<string, number>> = {};
    for (const [k, rs] of rows) {
      const o: Record<string, number> = {};
      for (const f of Object.keys(rs[0]!) as Array<keyof Row>) o[f] = median(rs.map((r) => r[f]));
      out[k] = o;
    }
    const ratio = (x: string, y: string) => (out[x] && out[y] ? +(out[x]!.rps! / out[y]!.rps!).toFixed(2) : undefined);
    console.log(JSON.stringify({
      seconds, rounds, loadavg: { before: load0.map((x) => +x.toFixed(2)), after: os.loadavg().map((x) => +x.toFixed(2)) },
      medians: out,
      ratios: { 'd/d0': ratio('d', 'd0'), 'dp/d0': ratio('dp', 'd0'), 'py/d0': ratio('py', 'd0'), 'pyp/d0': ratio('pyp', 'd0'), 'iso/c': ratio('iso', 'c') },
    }, null, 2));
  } finally {
    if (rt) await stopTarget(rt);
    if (d0) await stopTarget(d0);
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
