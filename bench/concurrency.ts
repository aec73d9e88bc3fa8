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
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { request } from 'undici';

const values = (process.argv[2] ?? '64,256').split(',').map(Number);
const rounds = Number(process.argv[3] ?? 5);
const seconds = Number(process.argv[4] ?? 4);
const path = '/_events/bench/thread';

async function once(concurrency: number): Promise<number> {
  const proc = spawn(process.execPath, ['--no-node-snapshot', '--import', 'tsx', new URL('./target.ts', import.meta.url).pathname, 'runtime'], {
    stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, BENCH_CONCURRENCY: String(concurrency) },
  });
  try {
    const [url, auth] = await new Promise<string[]>((resolve, reject) => {
      proc.once('exit', (code) => reject(new Error(`runtime target exited with ${code}`)));
      createInterface({ input: proc.stdout! }).on('line', (l) => { if (l.startsWith('READY ')) resolve(l.slice(6).split(' ')); });
    });
    const counts = async (): Promise<{ fired: number; completed: number }> => {
      const res = await request(`${url}/_lively/status`, { headers: { authorization: `Basic ${auth}` } });
      return ((await res.body.json()) as { activations: { fired: number; completed: number } }).activations;
    };
    const drained = async () => { let c = await counts(); while (c.completed < c.fired) { await new Promise((r) => setTimeout(r, 20)); c = await counts(); } return c; };
    await autocannon({ url: url + path, connections: 50, duration: 2 });
    const before = await drained();
    const t0 = performance.now();
    await autocannon({ url: url + path, connections: 50, duration: seconds });
    const after = await drained();
    return (after.completed - before.completed) / ((performance.now() - t0) / 1000);
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => { proc.once('exit', r); setTimeout(r, 5_000); });
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
