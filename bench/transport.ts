/**
 * `npm run bench:transport -- [rounds] [seconds]`: what the hop to a worker thread costs with no
 * runtime around it, by transport, next to a bare server (bench/floor.ts):
 *   bare     node:http answering 200 at once, scenario (a) of `npm run bench`
 *   port     node:http plus two worker threads over MessagePorts, as the thread pool
 *   ring     the same over SharedArrayBuffer byte rings woken with Atomics.waitAsync
 *   port202  as port, answering 202 at once; processed/s as scenario (b)
 * They run in turn, `rounds` times each, under autocannon (50 connections); printed are medians
 * of req/s and of CPU µs per request of the main thread and of the whole process, read from
 * /proc (Linux only).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';

const modes = { bare: 'bare', port: 'floor', ring: 'floor-ring', port202: 'floor202' } as const;
type Mode = keyof typeof modes;
interface Sample { rps: number; mainUs: number; processUs: number }

function cpuUs(file: string): number {
  const stat = readFileSync(file, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10_000;
}

async function measure(mode: Mode, seconds: number): Promise<Sample> {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('./target.ts', import.meta.url).pathname, modes[mode]], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (l) => { if (l.startsWith('READY ')) resolve(l.slice(6).split(' ')[0]!); });
      child.once('exit', (code) => reject(new Error(`${modes[mode]} target exited with ${code}`)));
    });
    const completed = async (): Promise<number> => ((await (await fetch(`${url}/_lively/status`)).json()) as { activations: { completed: number } }).activations.completed;
    await autocannon({ url, connections: 50, duration: 1 });
    const forget = mode === 'port202';
    // fire-and-forget: a request counts once its outcome is back (processed/s), after the warm-up's are
    let before = forget ? await completed() : 0;
    if (forget) for (let now; (now = await completed()) !== before;) { before = now; await new Promise((r) => setTimeout(r, 50)); }
    const pid = child.pid!;
    const t0 = performance.now();
    const m0 = cpuUs(`/proc/${pid}/task/${pid}/stat`), p0 = cpuUs(`/proc/${pid}/stat`);
    const r = await autocannon({ url, connections: 50, duration: seconds });
    const n = r.requests.total;
    if (forget) while ((await completed()) - before < n) await new Promise((res) => setTimeout(res, 5));
    const elapsed = forget ? (performance.now() - t0) / 1000 : seconds;
    return { rps: Math.round(n / elapsed), mainUs: (cpuUs(`/proc/${pid}/task/${pid}/stat`) - m0) / n, processUs: (cpuUs(`/proc/${pid}/stat`) - p0) / n };
  } finally {
    child.kill();
  }
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]!; };

const rounds = Number(process.argv[2] ?? 5);
const seconds = Number(process.argv[3] ?? 4);
const got: Record<Mode, Sample[]> = { bare: [], port: [], ring: [], port202: [] };
for (let i = 0; i < rounds; i++) {
  for (const mode of Object.keys(modes) as Mode[]) {
    const r = await measure(mode, seconds);
    got[mode].push(r);
    console.log(`round ${i + 1} ${mode}: ${r.rps} req/s, main ${r.mainUs.toFixed(1)} µs/req, process ${r.processUs.toFixed(1)} µs/req`);
  }
}
for (const mode of Object.keys(modes) as Mode[]) {
  const rs = got[mode];
  console.log(`${mode} (median of ${rounds}): ${median(rs.map((r) => r.rps))} req/s (${(median(rs.map((r) => r.rps)) / median(got.bare.map((b) => b.rps)) * 100).toFixed(0)} % of bare), main ${median(rs.map((r) => r.mainUs)).toFixed(1)} µs/req, process ${median(rs.map((r) => r.processUs)).toFixed(1)} µs/req`);
}
