/**
 * `npm run bench:durable -- [connections] [rounds] [seconds]`: durable fire-and-forget triggers
 * against (b), the same event not durable, at each number of connections (default 50,100,200),
 * on one runtime, after DURABLE_WARM seconds (20) of durable load so the store's code is
 * optimised; alternating round by round; medians of processed/s, of CPU per trigger (runtime +
 * store) and of the per-round ratio durable ÷ (b).
 *
 * A durable trigger's 202 waits for the journal's write, so a client that waits for each answer
 * before the next sends as many per second as it has connections ÷ that latency: at a few
 * dozen connections durable triggers run below what the runtime could take, leaving cores idle
 * ("cores" beside each figure). More connections fill larger journal writes (one per group of
 * triggers that arrived while the write before was in flight) until CPU is what bounds them.
 *   connections  comma-separated, default 50,100,200
 *   rounds       default 3
 *   seconds      of load per measurement, default 3
 * Linux only (reads /proc).
 */
import autocannon from 'autocannon';
import { request } from 'undici';
import { startTarget, stopTarget } from './targets.ts';
import { measureCpu, median, storePidOf, type CpuSample } from './cpu-measure.ts';

const connections = (process.argv[2] ?? '50,100,200').split(',').map(Number);
const rounds = Number(process.argv[3] ?? 3);
const seconds = Number(process.argv[4] ?? 3);
const warm = Number(process.env.DURABLE_WARM ?? 20);
const kPaths = { b: '/_events/bench/thread', db: '/_events/bench/durable' } as const;

const cost = (s: CpuSample) => s.runtimeProcess + s.store;

async function main(): Promise<void> {
  if (process.platform !== 'linux') throw new Error('bench:durable reads /proc: Linux only');
  const t = await startTarget('runtime');
  try {
    const storePid = await storePidOf(t);
    for (const p of Object.values(kPaths)) await (await request(t.url + p)).body.dump();
    await autocannon({ url: t.url + kPaths.b, connections: 50, duration: 1 });
    await autocannon({ url: t.url + kPaths.db, connections: 50, duration: warm });
    const samples = new Map<string, CpuSample[]>();
    for (let r = 1; r <= rounds; r++) {
      const order = r % 2 ? connections : [...connections].reverse();
      for (const c of order) {
        for (const key of (r % 2 ? ['b', 'db'] : ['db', 'b']) as Array<keyof typeof kPaths>) {
          const m = await measureCpu(t, t.url + kPaths[key], seconds, { counts: true, connections: c, ...(storePid ? { storePid } : {}) });
          (samples.get(`${key}@${c}`) ?? samples.set(`${key}@${c}`, []).get(`${key}@${c}`)!).push(m);
          console.log(`  round ${r} ${`${key}@${c}`.padEnd(7)} ${cost(m).toFixed(1).padStart(6)} µs (main ${m.mainThread}, threads ${m.otherThreads}, store ${m.store}) · gen ${m.loadGenerator} · cores ${m.coresBusy.toFixed(2)} · ${m.processedPerSecond}/s`);
        }
      }
    }
    console.log('\nconnections · (b) /s · durable /s · durable ÷ (b) by rate (median of per-round ratios) · CPU per trigger (b), durable · cores (b), durable');
    for (const c of connections) {
      const b = samples.get(`b@${c}`)!, d = samples.get(`db@${c}`)!;
      const rate = (s: CpuSample) => s.processedPerSecond;
      console.log(`  ${String(c).padStart(4)} · ${Math.round(median(b.map(rate)))} · ${Math.round(median(d.map(rate)))} · ${median(d.map((x, i) => rate(x) / rate(b[i]!))).toFixed(2)}`
        + ` · ${median(b.map(cost)).toFixed(1)} µs, ${median(d.map(cost)).toFixed(1)} µs · ${median(b.map((x) => x.coresBusy)).toFixed(2)}, ${median(d.map((x) => x.coresBusy)).toFixed(2)}`);
    }
  } finally {
    await stopTarget(t);
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
