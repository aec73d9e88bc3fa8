/**
 * The runtime side of the orphan watchdog (see watchdog-main.cjs): started on the first worker
 * process, told about every process group, and left to clean up if the runtime dies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const kScript = fileURLToPath(new URL('./watchdog-main.cjs', import.meta.url));

export class Watchdog {
  private child?: ChildProcess;
  constructor(private readonly graceMs = 1000) {}

  get pid(): number | undefined { return this.child?.pid; }

  /** Worker processes are group leaders (spawned detached), so their pid is their group id. */
  guard(pgid: number): void { this.send(`+${pgid}\n`); }

  release(pgid: number): void { if (this.child) this.send(`-${pgid}\n`); }

  /**
   * Ends the pipe: the watchdog kills any group still registered, then exits. One that has not
   * exited a second after its grace period (stopped, or stuck) is killed, so a shutdown never
   * waits on it for ever.
   */
  async close(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    let timer: NodeJS.Timeout | undefined;
    const exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) { resolve(); return; }
      child.once('exit', () => resolve());
      timer = setTimeout(() => child.kill('SIGKILL'), this.graceMs + 1000);
    });
    // Waiting for it must keep the event loop alive, or a runtime with nothing else left to do
    // would exit mid-shutdown without the rest of its close.
    child.ref();
    child.stdin?.end();
    await exited;
    clearTimeout(timer);
  }

  private send(line: string): void {
    const child = this.child ?? this.start();
    child.stdin?.write(line);
  }

  private start(): ChildProcess {
    // own group: a signal aimed at the runtime's group must not take the watchdog with it
    const child = spawn(process.execPath, [kScript, String(this.graceMs)], {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: true,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    });
    child.stdin?.on('error', () => { /* watchdog gone: nothing left to tell it */ });
    child.on('exit', () => { if (this.child === child) this.child = undefined; });
    // neither the process nor its pipe may keep the runtime alive
    child.unref();
    (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    this.child = child;
    return child;
  }
}
