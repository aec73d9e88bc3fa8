/**
 * What the dispatcher asks of the operating system: where an interpreter lives, and whether a
 * silent worker process is waiting for its next line (the "never-acknowledging" rule).
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import path from 'node:path';

/** Absolute path of `command` (a bare name is searched on PATH), or undefined. */
export function findExecutable(command: string, searchPath = process.env.PATH ?? ''): string | undefined {
  const candidates = command.includes('/')
    ? [path.resolve(command)]
    : searchPath.split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, command));
  for (const file of candidates) {
    try { accessSync(file, constants.X_OK); return file; } catch { /* next */ }
  }
  return undefined;
}

// syscall numbers by architecture: read, and the calls an event loop waits in
const kSyscalls: Record<string, { read: number; waits: number[] }> = {
  x64: { read: 0, waits: [7, 23, 232, 270, 271, 281, 441] }, // poll select epoll_wait pselect6 ppoll epoll_pwait epoll_pwait2
  arm64: { read: 63, waits: [22, 72, 73, 441] }, // epoll_pwait pselect6 ppoll epoll_pwait2
};

/** Whether this host tells what a process is blocked in (Linux with a readable /proc/<pid>/syscall). */
const kProcSyscall: boolean = (() => {
  if (process.platform !== 'linux' || !kSyscalls[process.arch]) return false;
  try { readFileSync('/proc/self/syscall', 'utf8'); return true; } catch { return false; }
})();

/**
 * Whether process `pid` looks like it is waiting for input: blocked in read(0), or idle in an
 * event loop (node, select-based scripts), and asleep there. A process that is computing,
 * sleeping, waiting for a child command, reading another descriptor (a socket) or in the middle
 * of exec is not. Nor is one the line has woken but the scheduler has not run yet, or one that is
 * stopped: the kernel still shows the read it was blocked in, but the line in the pipe is unread
 * (on a busy machine a woken process can wait longer than the silence that ends a message).
 * Where the kernel does not tell (no /proc syscall file: another OS or architecture) silence
 * alone decides.
 */
export function looksWaitingForInput(pid: number): boolean {
  if (!kProcSyscall) return true;
  const table = kSyscalls[process.arch]!;
  let text: string;
  try { text = readFileSync(`/proc/${pid}/syscall`, 'utf8').trim(); } catch { return false; }
  const [nr, arg0] = text.split(' ');
  const n = Number(nr);
  if (!Number.isInteger(n) || n < 0) return false; // "running", or blocked outside a system call
  const waiting = n === table.read ? Number(arg0) === 0 : table.waits.includes(n);
  // Read after the system call: a process woken since then shows R here, and is not waiting.
  return waiting && schedulerState(pid) === 'S';
}

/** The scheduler's state of `pid` (S asleep, R runnable, T stopped, …) from /proc/<pid>/stat. */
function schedulerState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2);
  } catch {
    return undefined;
  }
}
