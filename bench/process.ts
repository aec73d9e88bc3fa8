/**
 * Dispatcher-level cost of one message for the workers that do not run in the thread pool:
 * a kept process (python, sh), a fresh process per trigger (a script that handles one line
 * and exits), and an isolate. Sequential messages, so the figures are latency, not throughput
 * under load (the HTTP-level `npm run bench` measures that).
 *
 *   node --no-node-snapshot --import tsx bench/process.ts [messages]
 * Prints one JSON object per case.
 *
 *   node --no-node-snapshot --import tsx bench/process.ts throughput [seconds] [in-flight] [cases]
 * Throughput instead: `in-flight` messages (default 50) kept in flight per case, and CPU per
 * message of this process (the dispatcher) and of the worker processes, from /proc, with their
 * read/write system calls; `raw` is the floor, a kept node child fed the same lines with no
 * dispatcher (as bench/target.ts persistent, scenario d0). Medians of three rounds.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import os from 'node:os';
import path from 'node:path';
import { kDefaultInterpreters } from '../src/config/index.ts';
import type { WorkerMessage } from '../src/shared/message.ts';
import type { Dispatcher } from '../src/workers/dispatcher.ts';
import { IsolateDispatcher } from '../src/workers/dispatch/isolate.ts';
import { ProcessDispatcher } from '../src/workers/dispatch/process.ts';
import type { WorkerSpec } from '../src/workers/revision.ts';
import { WorkerGate } from '../src/workers/gate.ts';

const count = Math.min(Math.max(Number(process.argv[2]) || 300, 10), 5000);

const sources: Record<string, { type: string; file: string; code: string }> = {
  'process python (kept)': { type: 'python', file: 'w.py', code: 'import sys, json\nfor line in sys.stdin:\n    m = json.loads(line)\n    print(json.dumps({"result": m["parameters"]["i"]}), flush=True)\n' },
  'process sh (kept)': { type: 'sh', file: 'w.sh', code: 'while IFS= read -r line; do echo \'{"result":1}\'; done\n' },
  'process sh (per trigger)': { type: 'sh', file: 'w.sh', code: 'IFS= read -r line; echo \'{"result":1}\'\n' },
  'process python (per trigger)': { type: 'python', file: 'w.py', code: 'import sys, json\nm = json.loads(sys.stdin.readline())\nprint(json.dumps({"result": m["parameters"]["i"]}), flush=True)\n' },
  'isolate': { type: 'isolate', file: 'w.js', code: 'module.exports = (msg) => msg.parameters.i;\n' },
};

function spec(name: string): WorkerSpec {
  const s = sources[name]!;
  return {
    id: name.replace(/\W+/g, '_'), rev: '1-bench', type: s.type, isolation: 'thread', delegate: s.file,
    attachments: { [s.file]: { contentType: 'text/plain', data: Buffer.from(s.code) } },
    arguments: {}, env: {}, couch: false, limits: { timeout: 10_000, concurrency: 1, idle: 60_000 },
  };
}

const msg = (w: WorkerSpec, i: number): WorkerMessage => ({
  activation: `bench-${i}`, event: 'bench', worker: w.id, trigger: 'http', arguments: {}, parameters: { i },
});

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;

async function measure(name: string, d: Dispatcher, n: number): Promise<void> {
  const w = spec(name);
  const warm = await d.dispatch({ spec: w, message: msg(w, -1), onEmit: () => {} });
  if (warm.status !== 'ok') throw new Error(`${name}: ${JSON.stringify(warm.error)}`);
  const times: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    const o = await d.dispatch({ spec: w, message: msg(w, i), onEmit: () => {} });
    if (o.status !== 'ok') throw new Error(`${name}: ${JSON.stringify(o.error)}`);
    times.push(performance.now() - s);
  }
  const total = performance.now() - t0;
  times.sort((a, b) => a - b);
  const r2 = (x: number) => Math.round(x * 100) / 100;
  console.log(JSON.stringify({ case: name, messages: n, perSecond: Math.round((n / total) * 1000), p50ms: r2(pct(times, 0.5)), p99ms: r2(pct(times, 0.99)) }));
}

/** The worker code of the throughput cases: the benchmark app's trivial workers (bench/app/workers). */
const kThroughputSources: Record<string, { type: string; file: string; code: string; limits?: Partial<WorkerSpec['limits']> }> = {
  node: { type: 'node', file: 'index.js', code: readFileSync(new URL('./app/workers/trivial_proc/index.js', import.meta.url), 'utf8') },
  python: { type: 'python', file: 'main.py', code: readFileSync(new URL('./app/workers/trivial_py/main.py', import.meta.url), 'utf8') },
  isolate: { type: 'isolate', file: 'index.js', code: readFileSync(new URL('./app/workers/trivial_iso/index.js', import.meta.url), 'utf8') },
  // the same, written with the helpers, declaring {"pipeline": 16}
  'node-pipe': { type: 'node', file: 'index.js', code: readFileSync(new URL('./app/workers/trivial_proc_pipe/index.js', import.meta.url), 'utf8'), limits: { concurrency: 64, processes: 2 } },
  'python-pipe': { type: 'python', file: 'main.py', code: readFileSync(new URL('./app/workers/trivial_py_pipe/main.py', import.meta.url), 'utf8'), limits: { concurrency: 64, processes: 2 } },
};

/** A message as an HTTP trigger of the benchmark app makes it. */
const httpMessage = (i: number): WorkerMessage => ({
  activation: `0mbench${i.toString(36)}`, event: 'bench_process', worker: 'trivial_proc', trigger: 'http', method: 'GET', path: '/bench/process',
  arguments: {}, parameters: { wait: 'true' }, request: { query: { wait: 'true' }, headers: { host: '127.0.0.1:40000' }, body: undefined },
});

interface ProcUsage { cpuUs: number; sys: number }

function procUsage(pid: number): ProcUsage {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  const sys = Number(/^syscr:\s+(\d+)/m.exec(io)?.[1] ?? 0) + Number(/^syscw:\s+(\d+)/m.exec(io)?.[1] ?? 0);
  return { cpuUs: (Number(f[11]) + Number(f[12])) * 10_000, sys };
}

/** Child processes of this one (the worker processes; the watchdog is told apart by its command line). */
function workerPids(): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const s = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]) !== process.pid) continue;
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes('watchdog')) continue;
      out.push(Number(name));
    } catch { /* gone */ }
  }
  return out;
}

type Send = (m: WorkerMessage) => Promise<void>;

/** Keeps `inFlight` messages in flight through `send` for `seconds`; CPU per message of this process and of its children. */
async function throughput(name: string, send: Send, seconds: number, inFlight: number): Promise<Record<string, number | string>> {
  for (let i = 0; i < 2000; i++) await send(httpMessage(i));
  const pids = workerPids();
  const before = pids.map(procUsage);
  const self0 = process.cpuUsage();
  const selfSys0 = procUsage(process.pid).sys;
  let n = 0;
  const until = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (performance.now() < until) await send(httpMessage(n++));
  }));
  const elapsed = (performance.now() - t0) / 1000;
  const self = process.cpuUsage(self0);
  const after = pids.map(procUsage);
  let childUs = 0, childSys = 0;
  for (let i = 0; i < pids.length; i++) { childUs += after[i]!.cpuUs - before[i]!.cpuUs; childSys += after[i]!.sys - before[i]!.sys; }
  const per = (x: number) => +(x / n).toFixed(1);
  return {
    case: name, perSecond: Math.round(n / elapsed), processes: pids.length,
    dispatcherUs: per(self.user + self.system), workerUs: per(childUs),
    dispatcherSyscalls: +((procUsage(process.pid).sys - selfSys0) / n).toFixed(2), workerSyscalls: +(childSys / n).toFixed(2),
  };
}

/** The floor: one kept node child fed the lines directly, answers taken in order (bench/target.ts persistent). */
function rawSend(): { send: Send; close: () => void } {
  const child = spawn(process.execPath, ['-e', kThroughputSources.node!.code], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting: Array<() => void> = [];
  createInterface({ input: child.stdout! }).on('line', () => waiting.shift()?.());
  return {
    send: (m) => new Promise<void>((resolve) => { waiting.push(resolve); child.stdin!.write(JSON.stringify(m) + '\n'); }),
    close: () => child.kill(),
  };
}

function throughputSpec(name: string): WorkerSpec {
  const s = kThroughputSources[name]!;
  return {
    id: `tp_${name}`, rev: '1-bench', type: s.type, isolation: s.type === 'node' ? 'process' : 'thread', delegate: s.file,
    attachments: { [s.file]: { contentType: 'text/plain', data: Buffer.from(s.code) } },
    arguments: {}, env: {}, couch: false, limits: { timeout: 10_000, concurrency: 2, idle: 60_000, ...s.limits },
  };
}

async function throughputMain(): Promise<void> {
  const seconds = Number(process.argv[3] ?? 3);
  const inFlight = Number(process.argv[4] ?? 50);
  const cases = (process.argv[5] ?? 'raw,node,python,isolate').split(',');
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lively-bench-'));
  const proc = new ProcessDispatcher({ interpreters: kDefaultInterpreters, dataDir });
  const iso = new IsolateDispatcher();
  const raw = cases.includes('raw') ? rawSend() : undefined;
  const gate = new WorkerGate(1_000_000, 1_000_000);
  const sendFor = (name: string): Send => {
    if (name === 'raw') return raw!.send;
    const spec = throughputSpec(name);
    const d: Dispatcher = spec.type === 'isolate' ? iso : proc;
    // as the runtime does: at most `concurrency` messages of the worker reach its dispatcher
    return async (message) => {
      await gate.admit(spec.id, spec.limits.concurrency);
      try {
        const o = await d.dispatch({ spec, message, onEmit: () => {} });
        if (o.status !== 'ok') throw new Error(`${name}: ${JSON.stringify(o.error)}`);
      } finally { gate.release(spec.id, spec.limits.concurrency); }
    };
  };
  try {
    const rows = new Map<string, Array<Record<string, number | string>>>();
    for (let round = 0; round < 3; round++) {
      for (const c of cases) {
        const r = await throughput(c, sendFor(c), seconds, inFlight);
        process.stderr.write(`${JSON.stringify(r)}\n`);
        (rows.get(c) ?? rows.set(c, []).get(c)!).push(r);
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    for (const [c, rs] of rows) {
      const o: Record<string, number | string> = { case: c };
      for (const k of Object.keys(rs[0]!)) if (k !== 'case') o[k] = median(rs.map((r) => r[k] as number));
      console.log(JSON.stringify(o));
    }
    console.log(JSON.stringify({ loadavg: os.loadavg().map((x) => +x.toFixed(2)) }));
  } finally {
    raw?.close();
    await proc.close(2000);
    await iso.close(1000);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function latencyMain(): Promise<void> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lively-bench-'));
  const proc = new ProcessDispatcher({ interpreters: kDefaultInterpreters, dataDir });
  const iso = new IsolateDispatcher();
  try {
    await measure('process python (kept)', proc, count);
    await measure('process sh (kept)', proc, count);
    await measure('process sh (per trigger)', proc, Math.ceil(count / 5));
    await measure('process python (per trigger)', proc, Math.ceil(count / 5));
    await measure('isolate', iso, count);
  } finally {
    await proc.close(2000);
    await iso.close(1000);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'throughput') await throughputMain();
else await latencyMain();
