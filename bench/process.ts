/**
 * Dispatcher-level cost of one message for the workers that do not run in the thread pool:
 * a kept process (python, sh), a fresh process per trigger (a script that handles one line
 * and exits), and an isolate. Sequential messages, so the figures are latency, not throughput
 * under load (the HTTP-level `npm run bench` measures that).
 *
 *   node --no-node-snapshot --import tsx bench/process.ts [messages]
 * Prints one JSON object per case.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { kDefaultInterpreters } from '../src/config/index.ts';
import type { WorkerMessage } from '../src/shared/message.ts';
import type { Dispatcher } from '../src/workers/dispatcher.ts';
import { IsolateDispatcher } from '../src/workers/dispatch/isolate.ts';
import { ProcessDispatcher } from '../src/workers/dispatch/process.ts';
import type { WorkerSpec } from '../src/workers/revision.ts';

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
