/**
 * The simulated `process` one worker instance sees: its own stdin, stdout, stderr, argv, env
 * and exit. Everything else falls through to the thread's real process by prototype, so
 * `process.nextTick`, `hrtime`, `memoryUsage`, `versions` behave as usual.
 */
import { EventEmitter } from 'node:events';
import { Readable, Writable } from 'node:stream';
import { Console } from 'node:console';

/** Thrown by the simulated `process.exit` to unwind the worker's code; never reported as a fault. */
export class ExitSignal extends Error {
  constructor(readonly code: number) { super(`process.exit(${code})`); this.name = 'ExitSignal'; }
}

export interface SimulatedProcess {
  process: NodeJS.Process;
  stdin: Readable;
  console: Console;
}

export interface ProcessOptions {
  argv: string[];
  env: Record<string, string>;
  onStdout(chunk: string): void;
  onStderr(chunk: string): void;
  onExit(code: number): void;
}

function lineWriter(sink: (chunk: string) => void): Writable {
  return new Writable({
    decodeStrings: false,
    write(chunk: string | Buffer, _enc, cb) { sink(typeof chunk === 'string' ? chunk : chunk.toString('utf8')); cb(); },
  });
}

export function simulateProcess(opts: ProcessOptions): SimulatedProcess {
  const stdin = new Readable({ read() {} });
  const stdout = lineWriter(opts.onStdout);
  const stderr = lineWriter(opts.onStderr);
  const shim = Object.create(process) as NodeJS.Process & Record<string, unknown>;
  // Own event state, so `process.on(...)` in worker code never reaches the thread's process.
  (EventEmitter as unknown as { init: (this: object) => void }).init.call(shim);
  const exit = (code?: number | string | null): never => {
    const n = Number(code ?? shim.exitCode ?? 0) || 0;
    opts.onExit(n);
    throw new ExitSignal(n);
  };
  Object.defineProperties(shim, {
    stdin: { value: stdin, enumerable: true },
    stdout: { value: stdout, enumerable: true },
    stderr: { value: stderr, enumerable: true },
    argv: { value: opts.argv, enumerable: true, writable: true },
    env: { value: opts.env, enumerable: true, writable: true },
    exitCode: { value: undefined, enumerable: true, writable: true },
    exit: { value: exit },
    reallyExit: { value: exit },
    abort: { value: () => exit(134) },
    // The 2010 API the seed's workers used.
    openStdin: { value: () => { stdin.resume(); return stdin; } },
    kill: { value: () => { throw new Error('process.kill is not available to thread workers'); } },
    chdir: { value: () => { throw new Error('process.chdir is not available to thread workers'); } },
  });
  const console = new Console({ stdout, stderr, colorMode: false });
  return { process: shim, stdin, console };
}
