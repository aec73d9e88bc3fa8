/**
 * `npm run bench:concurrency -- [values] [rounds] [seconds]`: fire-and-forget triggers of the
 * trivial thread worker *processed* per second (counted once the queue has drained) for each
 * default `concurrency` in `values` (default 64,256), a fresh benchmark runtime each time, the
 * values alternating round by round so machine noise spreads over all of them; medians.
 * A trigger holds its worker's slot for a whole round trip to a thread and back, so the
 * concurrency bounds how many can be in that pipeline at once.
 *   values   comma-separated, default 64,256
 *   rounds   default 5
 *   seconds  of load per run, default 4 (after 2 s of warm-up)
 */
import autocannon from 'autocannon';
import { drained, startTarget, stopTarget } from './targets.ts';

const values = (process.argv[2] ?? '64,256').split(',').map(Number);
const rounds = Number(process.argv[3] ?? 5);
const seconds = Number(process.argv[4] ?? 4);
const path = '/_events/bench/thread';

async function once(concurrency: number): Promise<number> {
  const t = await startTarget('runtime', { env: { BENCH_CONCURRENCY: String(concurrency) } });
  try {
    await autocannon({ url: t.url + path, connections: 50, duration: 2 });
    const before = (await drained(t)).activations;
    const t0 = performance.now();
    await autocannon({ url: t.url + path, connections: 50, duration: seconds });
    const after = (await drained(t)).activations;
    return (after.completed - before.completed) / ((performance.now() - t0) / 1000);
  } finally {
    await stopTarget(t);
  }
}

const results = new Map<number, number[]>(values.map((v) => [v, []]));
for (let r = 0; r < rounds; r++) {
  for (const v of r % 2 === 0 ? values : [...values].reverse()) {
    const rate = await once(v);
    results.get(v)!.push(rate);
    console.log(`round ${r + 1} concurrency ${v}: ${Math.round(rate)} processed/s`);
  }
}
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };
console.log(JSON.stringify({ path, seconds, rounds, processedPerSecond: Object.fromEntries([...results].map(([v, xs]) => [v, { median: Math.round(median(xs)), runs: xs.map(Math.round) }])) }));
