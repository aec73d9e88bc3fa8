/**
 * `npm run bench:cli -- [runs]`: how long the command takes to start, the way it ran before the
 * build (bin/livelycouch.js spawning node with tsx on src/cli/main.ts, `npm start` running
 * main.ts through tsx) against the build in dist/ — side by side, alternating which goes first,
 * `runs` times each (default 10; `start` half as often), after one unmeasured warm-up each (tsx's
 * compile cache is warm, as on a developer's machine). Measured from spawn to exit for
 * `--help` and `trigger` (fire-and-forget, against a runtime this script starts), and to the
 * first 200 of /_lively/health for `start`; with the CPU time its processes used by then.
 * `CLI_BENCH_BASE=<checkout>` adds that checkout's bin (`--help`, `trigger`) and `npm start` (see kBase).
 * `start` is measured twice: as the node command `npm start` runs, and through npm itself, whose
 * own start (the same for every checkout) is then in the figure.
 * Prints medians and ratios to before; writes them to
 * bench/results/cli-start-<time>.json with the load average before and after.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
/**
 * CLI_BENCH_BASE: another checkout (a worktree of an older commit, sharing this node_modules)
 * whose bin and `npm start` run beside the others. "tsx (before)" runs today's sources, which carry
 * every improvement to the start itself; the base shows the time a user had then.
 */
const kBase = process.env.CLI_BENCH_BASE ? path.resolve(process.env.CLI_BENCH_BASE) : undefined;
const kTsx = import.meta.resolve('tsx');

/** `args` for node, or for `command` (say, npm) in `cwd` when given. */
interface Variant { name: string; args: string[]; command?: string; cwd?: string }
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

const kTick = 10; // ms per clock tick in /proc/<pid>/stat (USER_HZ 100)

/** CPU ms (user + system) of a process and its descendants, living and reaped, from /proc. */
function treeCpuMs(pid: number): number {
  const stats = new Map<number, { ppid: number; cpu: number }>();
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const st = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      stats.set(Number(p), { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * kTick });
    } catch { /* ended meanwhile */ }
  }
  let total = 0;
  const todo = [pid];
  while (todo.length) {
    const p = todo.pop()!;
    total += stats.get(p)?.cpu ?? 0;
    for (const [c, s] of stats) if (s.ppid === p) todo.push(c);
  }
  return total;
}

/**
 * Wall ms from spawn to exit (status 0) or to a healthy runtime (then stopped), and the CPU ms
 * the command's processes used by then (a steadier figure on a busy machine). A command run to
 * its end runs under bash, whose `times` gives its children's CPU, grandchildren included.
 */
async function once(v: Variant, until: Case['until'], port: number): Promise<{ ms: number; cpuMs: number }> {
  const { args } = v;
  const began = performance.now();
  const argv = until === 'exit' ? ['-c', '"$@" >/dev/null; s=$?; times; exit $s', 'bash', process.execPath, ...args] : args;
  // a command (npm) runs in a process group of its own, ended whole: npm does not pass SIGTERM on to its script's children
  const child = spawn(until === 'exit' ? 'bash' : v.command ?? process.execPath, argv, { cwd: v.cwd ?? kRoot, stdio: ['ignore', 'pipe', 'pipe'], detached: v.command !== undefined });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  if (until === 'exit') {
    const code = await exited;
    const ms = performance.now() - began;
    if (code !== 0) throw new Error(`${args.join(' ')} exited ${code}: ${stderr.trim()}`);
    // `times`: the shell's own user and system time, then its children's: "0m0.412s 0m0.081s"
    const m = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/.exec(stdout.trim());
    if (!m) throw new Error(`no CPU times from bash: ${stdout}`);
    return { ms, cpuMs: (Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4])) * 1000 };
  }
  let done = false;
  void exited.then(() => { done = true; });
  while (!(await healthy(port))) {
    if (done) throw new Error(`${args.join(' ')} ended before it was healthy: ${stderr.trim()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const ms = performance.now() - began;
  const cpuMs = treeCpuMs(child.pid!);
  if (v.command !== undefined) process.kill(-child.pid!, 'SIGTERM');
  else child.kill('SIGTERM');
  await exited;
  // the runtime under npm may outlive npm by a moment: the next run needs the port
  while (await healthy(port)) await new Promise((r) => setTimeout(r, 20));
  return { ms, cpuMs };
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
        ...(kBase ? [{ name: `${path.basename(kBase)}: its bin`, args: [path.join(kBase, 'bin/livelycouch.js'), '--help'] }] : []),
      ],
    },
    {
      name: 'livelycouch trigger email_event', runs, until: 'exit', variants: [
        { name: 'tsx (before)', args: [kOldBin, 'trigger', 'email_event', '--url', url] },
        { name: 'dist', args: [kNewBin, 'trigger', 'email_event', '--url', url] },
        ...(kBase ? [{ name: `${path.basename(kBase)}: its bin`, args: [path.join(kBase, 'bin/livelycouch.js'), 'trigger', 'email_event', '--url', url] }] : []),
      ],
    },
    {
      name: 'npm start until healthy', runs: Math.max(1, Math.ceil(runs / 2)), until: 'healthy', variants: [
        { name: 'tsx (before)', args: ['--no-node-snapshot', '--import', kTsx, path.join(kRoot, 'src/cli/main.ts'), ...startArgs('old')] },
        { name: 'dist', args: ['--no-node-snapshot', kNewBin, ...startArgs('new')] },
        { name: 'dist, bin without the flag (re-exec)', args: [kNewBin, ...startArgs('reexec')] },
        ...(kBase ? [{ name: `${path.basename(kBase)}: its npm start (tsx)`, args: ['--no-node-snapshot', '--import', kTsx, path.join(kBase, 'src/cli/main.ts'), ...startArgs('base')] }] : []),
        // the same two through npm itself, whose own start (the same for both) is in the figure
        { name: 'dist, through `npm start`', command: 'npm', cwd: kRoot, args: ['start', '--silent', '--', ...startArgs('npm-new').slice(1)] },
        ...(kBase ? [{ name: `${path.basename(kBase)}: through \`npm start\``, command: 'npm', cwd: kBase, args: ['start', '--silent', '--', ...startArgs('npm-base').slice(1)] }] : []),
      ],
    },
  ];

  const report: Array<{ case: string; variant: string; runs: number; medianMs: number; minMs: number; maxMs: number; ratio: number; medianCpuMs: number; cpuRatio: number }> = [];
  for (const c of cases) {
    const times = c.variants.map(() => [] as number[]);
    const cpu = c.variants.map(() => [] as number[]);
    for (const v of c.variants) await once(v, c.until, startPort);
    for (let i = 0; i < c.runs; i++) {
      const order = c.variants.map((_, k) => k);
      if (i % 2) order.reverse();
      for (const k of order) {
        const r = await once(c.variants[k]!, c.until, startPort);
        times[k]!.push(r.ms);
        cpu[k]!.push(r.cpuMs);
      }
    }
    const base = median(times[0]!);
    const baseCpu = median(cpu[0]!);
    console.log(`\n${c.name} (${c.runs} runs each, alternating)`);
    c.variants.forEach((v, k) => {
      const m = median(times[k]!);
      const mc = median(cpu[k]!);
      const row = {
        case: c.name, variant: v.name, runs: c.runs, medianMs: Math.round(m), minMs: Math.round(Math.min(...times[k]!)), maxMs: Math.round(Math.max(...times[k]!)),
        ratio: +(m / base).toFixed(3), medianCpuMs: Math.round(mc), cpuRatio: +(mc / baseCpu).toFixed(3),
      };
      report.push(row);
      console.log(`  ${v.name.padEnd(38)} median ${String(row.medianMs).padStart(6)} ms (min ${row.minMs}, max ${row.maxMs}) ${(row.ratio * 100).toFixed(0).padStart(3)} % | CPU ${String(row.medianCpuMs).padStart(6)} ms ${(row.cpuRatio * 100).toFixed(0).padStart(3)} %`);
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
