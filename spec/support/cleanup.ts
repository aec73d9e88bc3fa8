/** What specs use to leave nothing behind: a child process ended for sure, a directory removed. */
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

/** SIGKILLs `proc` unless it has exited, and resolves once it has. */
export async function ended(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exit = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGKILL');
  await exit;
}

/** Removes a directory tree; retried, since a store that just died may still be closing files in it. */
export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
}
