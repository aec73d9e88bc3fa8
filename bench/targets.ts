/**
 * Starting a server of ./target.ts from a benchmark script, and reading a runtime's (or the
 * fire-and-forget floor's) activation counts: shared by run.ts, cpu.ts and concurrency.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { request } from 'undici';

export interface Target {
  proc: ChildProcess;
  url: string;
  /** `Basic …` for the status API: the second word of a runtime's READY line. */
  auth?: string;
}

export interface StartOptions {
  /** added to this process's environment. */
  env?: Record<string, string>;
  /** node flags before the script (after --no-node-snapshot). */
  nodeFlags?: string[];
  /** every stdout line other than READY. */
  onLine?: (line: string) => void;
  /** the target.ts to run (another checkout's, to compare builds side by side); this one's by default. */
  script?: string;
}

/** Starts `node target.ts <mode>`; resolves once it prints `READY <url> [auth]`. */
export async function startTarget(mode: string, opts: StartOptions = {}): Promise<Target> {
  const proc = spawn(process.execPath, ['--no-node-snapshot', ...(opts.nodeFlags ?? []), '--import', 'tsx', opts.script ?? new URL('./target.ts', import.meta.url).pathname, mode], {
    stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...opts.env },
  });
  return new Promise<Target>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`${mode} target exited with ${code}`)));
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      if (!line.startsWith('READY ')) { opts.onLine?.(line); return; }
      const [url, auth] = line.slice(6).split(' ');
      resolve({ proc, url: url!, ...(auth ? { auth: `Basic ${auth}` } : {}) });
    });
  });
}

export async function stopTarget(t: Target): Promise<void> {
  t.proc.kill('SIGTERM');
  await new Promise((r) => { t.proc.once('exit', r); setTimeout(r, 5_000); });
}

export interface TargetStatus { store?: { pid?: number }; activations: { fired: number; completed: number }; dispatchers?: Array<{ name: string; batches?: number }> }

/** GET /_lively/status (a runtime, or the floor202 server, which answers the same counts). */
export async function status(t: Target): Promise<TargetStatus> {
  const res = await request(`${t.url}/_lively/status`, { headers: t.auth ? { authorization: t.auth } : {} });
  return (await res.body.json()) as TargetStatus;
}

/** Polls every `everyMs` until every activation fired has completed; returns the status then. */
export async function drained(t: Target, everyMs = 20): Promise<TargetStatus> {
  let s = await status(t);
  while (s.activations.completed < s.activations.fired) { await new Promise((r) => setTimeout(r, everyMs)); s = await status(t); }
  return s;
}
