/**
 * `npm run bench:quick`: the trigger path's CPU per trigger against its floors, in under two
 * minutes, to run after every change to it. Runtime + store CPU µs per trigger of
 *   (b) fire-and-forget ÷ floor (fb)'s, (c) `?wait=true` ÷ floor (f)'s,
 *   (b) with activation records ÷ the same without, durable (b) ÷ (b),
 * measured in turn, alternating, QUICK_ROUNDS rounds (3) of QUICK_SECONDS (3) each; medians.
 * Each scenario is first loaded for QUICK_WARM seconds (1), a durable one for QUICK_DURABLE_WARM (20):
 * durable triggers need about 20 for the store's code to be optimised (docs/benchmarks.md), and a
 * runtime that has run a while is what the figures are about; QUICK_DURABLE_WARM=1 measures them
 * as a runtime just started meets them.
 * Beside every figure: the load generator's CPU per request and how busy the cores were.
 * QUICK_ONLY=fb,b limits the scenarios. QUICK_BASE=<another checkout> adds its runtime's (b), (c)
 * and durable (b) as b0, c0 and db0 (say, main in a second worktree), and the ratios of this build's to them.
 * Linux only (reads /proc).
 */
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { request } from 'undici';
import { startTarget, stopTarget, type Target } from './targets.ts';
import { measureCpu, median, storePidOf, type CpuSample } from './cpu-measure.ts';

const kRounds = Number(process.env.QUICK_ROUNDS ?? 3);
const kSeconds = Number(process.env.QUICK_SECONDS ?? 3);
const kWarm = Number(process.env.QUICK_WARM ?? 1);
const kDurableWarm = Number(process.env.QUICK_DURABLE_WARM ?? 20);

interface Scenario { key: string; label: string; target: string; path: string; durable?: boolean }

const kScenarios: Scenario[] = [
  { key: 'fb', label: 'floor (fb): node:http + 2 threads, 202 at once', target: 'fb', path: '/' },
  { key: 'b', label: '(b) thread worker, fire-and-forget', target: 'rt', path: '/_events/bench/thread' },
  { key: 'f', label: 'floor (f): node:http + 2 threads, answers outcome', target: 'f', path: '/' },
  { key: 'c', label: '(c) thread worker, ?wait=true', target: 'rt', path: '/_events/bench/thread?wait=true' },
  { key: 'bn', label: '(b) with no activation records', target: 'quiet', path: '/_events/bench/thread' },
  { key: 'db', label: '(b) durable event, fire-and-forget', target: 'rt', path: '/_events/bench/durable', durable: true },
];

const kBase = process.env.QUICK_BASE;
if (kBase) {
  kScenarios.push({ key: 'b0', label: `(b) of ${kBase}`, target: 'base', path: '/_events/bench/thread' });
  kScenarios.push({ key: 'c0', label: `(c) of ${kBase}`, target: 'base', path: '/_events/bench/thread?wait=true' });
  kScenarios.push({ key: 'db0', label: `durable (b) of ${kBase}`, target: 'base', path: '/_events/bench/durable', durable: true });
}
const only = process.env.QUICK_ONLY?.split(',');
const scenarios = only ? kScenarios.filter((s) => only.includes(s.key)) : kScenarios;

interface Server { t: Target; counts: boolean; storePid?: number }

async function start(name: string): Promise<Server> {
  const mode = name === 'fb' ? 'floor202' : name === 'f' ? 'floor' : 'runtime';
  const t = await startTarget(mode, name === 'quiet' ? { env: { BENCH_RECORDS: 'off' } } : name === 'base' ? { script: path.join(kBase!, 'bench/target.ts') } : {});
  const counts = mode !== 'floor';
  return { t, counts, ...(mode === 'runtime' ? { storePid: await storePidOf(t) } : {}) };
}

const cost = (s: CpuSample) => s.runtimeProcess + s.store;
const f1 = (x: number) => x.toFixed(1);

async function main(): Promise<void> {
  if (process.platform !== 'linux') throw new Error('bench:quick reads /proc: Linux only');
  const began = performance.now();
  const load0 = os.loadavg();
  const servers = new Map<string, Server>();
  try {
    for (const name of new Set(scenarios.map((s) => s.target))) servers.set(name, await start(name));
    // Warm: bundles built, threads started, code optimised.
    for (const s of scenarios) {
      const srv = servers.get(s.target)!;
      await (await request(srv.t.url + s.path)).body.dump();
      await autocannon({ url: srv.t.url + s.path, connections: 50, duration: s.durable ? kDurableWarm : kWarm });
    }
    const samples = new Map<string, CpuSample[]>(scenarios.map((s) => [s.key, []]));
    console.log(`load average before: ${load0.map((x) => x.toFixed(2)).join(' ')} (${os.cpus().length} cores)`);
    console.log('µs of CPU per trigger (runtime or floor process + store) · load generator µs/request · cores busy · rate');
    for (let r = 1; r <= kRounds; r++) {
      // Alternating: each round in the other order, so a drift of the machine's load spreads over all.
      const order = r % 2 ? scenarios : [...scenarios].reverse();
      for (const s of order) {
        const srv = servers.get(s.target)!;
        const m = await measureCpu(srv.t, srv.t.url + s.path, kSeconds, { counts: srv.counts, ...(srv.storePid ? { storePid: srv.storePid } : {}) });
        samples.get(s.key)!.push(m);
        console.log(`  round ${r} ${s.key.padEnd(3)} ${f1(cost(m)).padStart(6)} µs (main ${f1(m.mainThread)}, threads ${f1(m.otherThreads)}, store ${f1(m.store)})`
          + ` · gen ${f1(m.loadGenerator)} · cores ${m.coresBusy.toFixed(2)} · ${m.processedPerSecond}/s${m.non2xx ? ` · ${m.non2xx} non-2xx` : ''}`);
      }
    }
    const med = (key: string, f: (s: CpuSample) => number) => (samples.has(key) ? median(samples.get(key)!.map(f)) : undefined);
    console.log('\nmedians');
    for (const s of scenarios) {
      console.log(`  ${s.key.padEnd(3)} ${f1(med(s.key, cost)!).padStart(6)} µs per trigger · gen ${f1(med(s.key, (x) => x.loadGenerator)!)} µs/req · cores ${med(s.key, (x) => x.coresBusy)!.toFixed(2)} · ${Math.round(med(s.key, (x) => x.processedPerSecond)!)}/s  ${s.label}`);
    }
    // Ratios per round (side by side in time), then their median.
    const ratio = (a: string, b: string, f: (s: CpuSample) => number) => {
      const xa = samples.get(a), xb = samples.get(b);
      if (!xa || !xb) return undefined;
      return median(xa.map((x, i) => f(x) / f(xb[i]!)));
    };
    const rows: Array<[string, string, string, number, string]> = [
      ['(b) ÷ (fb)', 'b', 'fb', 1.2, 'CPU per trigger'],
      ['(c) ÷ (f)', 'c', 'f', 1.2, 'CPU per trigger'],
      ['records on ÷ off (b)', 'b', 'bn', 1.05, 'CPU per trigger'],
      ['durable ÷ (b)', 'db', 'b', Infinity, 'CPU per trigger'],
      ['(b) ÷ (b) of QUICK_BASE', 'b', 'b0', Infinity, 'CPU per trigger'],
      ['(c) ÷ (c) of QUICK_BASE', 'c', 'c0', Infinity, 'CPU per trigger'],
      ['durable ÷ durable of QUICK_BASE', 'db', 'db0', Infinity, 'CPU per trigger'],
    ];
    console.log('\nratios (medians of per-round ratios)            CPU/trigger  goal   rate');
    for (const [label, a, b, goal] of rows) {
      const c = ratio(a, b, cost);
      if (c === undefined) continue;
      const rate = ratio(a, b, (x) => x.processedPerSecond)!;
      console.log(`  ${label.padEnd(46)} ${c.toFixed(2).padStart(5)}   ${Number.isFinite(goal) ? `≤ ${goal.toFixed(2)}` : '     '}  ${rate.toFixed(2)}`);
    }
    console.log(`\nload average after: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}; ${Math.round((performance.now() - began) / 1000)} s`);
  } finally {
    await Promise.all([...servers.values()].map((s) => stopTarget(s.t)));
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
