/**
 * `npm run bench:cli -- [runs]`: how long the command takes to start, the way it ran before the
 * build (bin/livelycouch.js spawning node with tsx on src/cli/main.ts, `npm start` running
 * main.ts through tsx) against the build in dist/ — side by side, alternating which goes first,
 * `runs` times each (default 10; `start` half as often), after one unmeasured warm-up each (tsx's
 * compile cache is warm, as on a developer's machine). Measured from spawn to exit for
 * `--help` and `trigger` (fire-and-forget, against a runtime this script starts), and to the
 * first 200 of /_lively/health for `start`. Prints medians and ratios; writes them to
 * bench/results/cli-start-<time>.json with the load average before and after.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from '../scripts/build.ts';

const kRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const runs = Math.max(1, Number(process.argv[2] ?? 10));
const tmp = mkdtempSync(path.join(os.tmpdir(), 'lively-bench-cli-'));
const kResults = path.join(kRoot, 'bench/results');

// The bin as it was: node spawning node with tsx on the TypeScript sources.
const kOldBin = path.join(tmp, 'livelycouch-tsx.mjs');
writeFileSync(kOldBin, `import { spawn } from 'node:child_process';
const tsx = ${JSON.stringify(import.meta.resolve('tsx'))};
const child = spawn(process.execPath, ['--no-node-snapshot', '--import', tsx, ${JSON.stringify(path.join(kRoot, 'src/cli/main.ts'))}, ...process.argv.slice(2)], { stdio: 'inherit' });
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
`);
const kNewBin = path.join(kRoot, 'bin/livelycouch.js');
const kTsx = import.meta.resolve('tsx');

interface Variant { name: string; args: string[] }
interface Case { name: string; variants: Variant[]; runs: number; until: 'exit' | 'healthy' }

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    }).on('error', reject);
  });
}

function healthy(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    http.get({ host: '127.0.0.1', port, path: '/_lively/health', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    }).on('error', () => resolve(false));
  });
}

/** Milliseconds from spawn to exit (status 0) or to a healthy runtime (then stopped). */
async function once(args: string[], until: Case['until'], port: number): Promise<number> {
  const began = performance.now();
  const child = spawn(process.execPath, args, { cwd: kRoot, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  if (until === 'exit') {
    const code = await exited;
    if (code !== 0) throw new Error(`${args.join(' ')} exited ${code}: ${stderr.trim()}`);
    return performance.now() - began;
  }
  let done = false;
  void exited.then(() => { done = true; });
  while (!(await healthy(port))) {
    if (done) throw new Error(`${args.join(' ')} ended before it was healthy: ${stderr.trim()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const ms = performance.now() - began;
  child.kill('SIGTERM');
  await exited;
  return ms;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

let target: ReturnType<typeof spawn> | undefined;
try {
  const began = Date.now();
  await build(kRoot, () => {});
  console.log(`dist/ built in ${Date.now() - began} ms`);
  const load = os.loadavg();

  // The runtime `trigger` talks to (its time is the same for both; what differs is the command's start).
  const port = await freePort();
  target = spawn(process.execPath, ['--no-node-snapshot', kNewBin, 'start', '--port', String(port), '--data', path.join(tmp, 'target')], { cwd: kRoot, stdio: 'ignore' });
  while (!(await healthy(port))) await new Promise((r) => setTimeout(r, 50));
  const url = `http://127.0.0.1:${port}`;

  const startPort = await freePort();
  const startArgs = (name: string) => ['start', '--port', String(startPort), '--data', path.join(tmp, name)];
  const cases: Case[] = [
    {
      name: 'livelycouch --help', runs, until: 'exit', variants: [
        { name: 'tsx (before)', args: [kOldBin, '--help'] },
        { name: 'dist', args: [kNewBin, '--help'] },
        { name: 'dist, node --no-node-snapshot', args: ['--no-node-snapshot', kNewBin, '--help'] },
      ],
    },
    {
      name: 'livelycouch trigger email_event', runs, until: 'exit', variants: [
        { name: 'tsx (before)', args: [kOldBin, 'trigger', 'email_event', '--url', url] },
        { name: 'dist', args: [kNewBin, 'trigger', 'email_event', '--url', url] },
      ],
    },
    {
      name: 'npm start until healthy', runs: Math.max(1, Math.ceil(runs / 2)), until: 'healthy', variants: [
        { name: 'tsx (before)', args: ['--no-node-snapshot', '--import', kTsx, path.join(kRoot, 'src/cli/main.ts'), ...startArgs('old')] },
        { name: 'dist', args: ['--no-node-snapshot', kNewBin, ...startArgs('new')] },
        { name: 'dist, bin without the flag (re-exec)', args: [kNewBin, ...startArgs('reexec')] },
      ],
    },
  ];

  const report: Array<{ case: string; variant: string; runs: number; medianMs: number; minMs: number; maxMs: number; ratio: number }> = [];
  for (const c of cases) {
    const times = c.variants.map(() => [] as number[]);
    for (const v of c.variants) await once(v.args, c.until, startPort);
    for (let i = 0; i < c.runs; i++) {
      const order = c.variants.map((_, k) => k);
      if (i % 2) order.reverse();
      for (const k of order) times[k]!.push(await once(c.variants[k]!.args, c.until, startPort));
    }
    const base = median(times[0]!);
    console.log(`\n${c.name} (${c.runs} runs each, alternating)`);
    c.variants.forEach((v, k) => {
      const m = median(times[k]!);
      const row = { case: c.name, variant: v.name, runs: c.runs, medianMs: Math.round(m), minMs: Math.round(Math.min(...times[k]!)), maxMs: Math.round(Math.max(...times[k]!)), ratio: +(m / base).toFixed(3) };
      report.push(row);
      console.log(`  ${v.name.padEnd(40)} median ${String(row.medianMs).padStart(6)} ms  (min ${row.minMs}, max ${row.maxMs})  ${(row.ratio * 100).toFixed(0)} % of before`);
    });
  }
  const result = { node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, loadBefore: load, loadAfter: os.loadavg(), rows: report };
  mkdirSync(kResults, { recursive: true });
  const file = path.join(kResults, `cli-start-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(result, null, 1) + '\n');
  console.log(`\nload average ${load.map((x) => x.toFixed(2)).join(' ')} before, ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} after; ${path.relative(kRoot, file)}`);
} finally {
  if (target && target.exitCode === null && target.signalCode === null) {
    const t = target;
    const exited = new Promise((r) => t.on('exit', r));
    t.kill('SIGTERM');
    await exited;
  }
  rmSync(tmp, { recursive: true, force: true });
}
