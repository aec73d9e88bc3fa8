/**
 * What the dispatcher asks of the operating system: where an interpreter lives, and whether a
 * silent worker process is waiting for its next line (the "never-acknowledging" rule).
 */
import { accessSync, constants, existsSync, readFileSync, readdirSync, realpathSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';

/**
 * Absolute path of `command` (a bare name is searched on PATH), or undefined. With `user`, only a
 * file that user may run counts: a runtime running as root whose process workers run as
 * `nobody` passes over an interpreter under /root (pyenv's shims, say) for the next one on PATH.
 */
export function findExecutable(command: string, searchPath = process.env.PATH ?? '', user?: { uid: number; gid: number }): string | undefined {
  const candidates = command.includes('/')
    ? [path.resolve(command)]
    : searchPath.split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, command));
  for (const file of candidates) {
    try {
      accessSync(file, constants.X_OK);
      if (!user || runnableBy(file, user)) return file;
    } catch { /* next */ }
  }
  return undefined;
}

/** Whether `user` may search every folder down to `file` (symbolic links followed) and run it. */
function runnableBy(file: string, user: { uid: number; gid: number }): boolean {
  if (user.uid === 0) return true;
  const real = realpathSync(file);
  const allowed = (st: Stats) => (st.mode & (st.uid === user.uid ? 0o100 : st.gid === user.gid ? 0o010 : 0o001)) !== 0;
  let dir = path.dirname(real);
  for (;;) {
    if (!allowed(statSync(dir))) return false;
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return allowed(statSync(real));
}

// syscall numbers by architecture: read, and the calls an event loop waits in, with the argument
// that says how long it waits ('ms': an int, -1 for ever; 'ptr': a pointer to a time, 0 for ever)
type Wait = readonly [arg: number, kind: 'ms' | 'ptr'];
const kSyscalls: Record<string, { read: number; futex: number; waits: Record<number, Wait> }> = {
  x64: {
    read: 0,
    futex: 202,
    // poll select epoll_wait pselect6 ppoll epoll_pwait epoll_pwait2
    waits: { 7: [2, 'ms'], 23: [4, 'ptr'], 232: [3, 'ms'], 270: [4, 'ptr'], 271: [2, 'ptr'], 281: [3, 'ms'], 441: [3, 'ptr'] },
  },
  // epoll_pwait pselect6 ppoll epoll_pwait2
  arm64: { read: 63, futex: 98, waits: { 22: [3, 'ms'], 72: [4, 'ptr'], 73: [2, 'ptr'], 441: [3, 'ptr'] } },
};

/** Whether a wait's time argument (as /proc prints it, in hex) means "no time limit". */
function forever(arg: string | undefined, kind: 'ms' | 'ptr'): boolean {
  if (arg === undefined) return false;
  let v: bigint;
  try { v = BigInt(arg); } catch { return false; }
  // an int of -1 may be printed sign-extended or not
  return kind === 'ptr' ? v === 0n : (v & 0xffffffffn) === 0xffffffffn;
}

/** Whether this host tells what a process is blocked in (Linux with a readable /proc/<pid>/syscall). */
const kProcSyscall: boolean = (() => {
  if (process.platform !== 'linux' || !kSyscalls[process.arch]) return false;
  try { readFileSync('/proc/self/syscall', 'utf8'); return true; } catch { return false; }
})();

/**
 * Whether process `pid` looks like it is waiting for input: blocked in read(0), or idle in an
 * event loop (node, select-based scripts) with no time limit, and asleep there. A process that
 * is computing, sleeping, waiting for a child command, reading another descriptor (a file, a
 * socket), waiting with a time limit (a network call or a select with a timeout, a node timer)
 * or in the middle of exec is not. Nor is one the line has woken but the scheduler has not run
 * yet, or one that is stopped: the kernel still shows the read it was blocked in, but the line
 * in the pipe is unread (on a busy machine a woken process can wait longer than the silence
 * that ends a message). Where the kernel does not tell (no /proc syscall file: another OS or
 * architecture) silence alone decides.
 */
export function looksWaitingForInput(pid: number): boolean {
  if (!kProcSyscall) return true;
  if (!threadWaits(pid, pid, true)) return false;
  // Its other threads too: a node worker's file read runs on a thread of libuv's pool, and a
  // python worker may answer from a thread of its own. Each must be idle: waiting for ever, or
  // on a lock with no time limit (the idle pool threads of node and V8).
  let tids: string[];
  try { tids = readdirSync(`/proc/${pid}/task`); } catch { return false; }
  for (const tid of tids) if (Number(tid) !== pid && !threadWaits(pid, Number(tid), false)) return false;
  // Read after the system calls: a main thread woken since shows R here, and is not waiting.
  return schedulerState(`/proc/${pid}/stat`) === 'S';
}

/** Whether thread `tid` of `pid` is asleep waiting with no time limit (the main thread: for input). */
function threadWaits(pid: number, tid: number, main: boolean): boolean {
  const table = kSyscalls[process.arch]!;
  const dir = `/proc/${pid}/task/${tid}`;
  let text: string;
  try { text = readFileSync(`${dir}/syscall`, 'utf8').trim(); } catch { return !main && !existsSync(dir); }
  const args = text.split(' ');
  const n = Number(args[0]);
  if (!Number.isInteger(n) || n < 0) return false; // "running", or blocked outside a system call
  let waiting: boolean;
  if (n === table.read) waiting = Number(args[1]) === 0;
  else if (n === table.futex) waiting = !main && forever(args[4], 'ptr');
  else {
    const wait = table.waits[n];
    waiting = wait !== undefined && forever(args[1 + wait[0]], wait[1]);
  }
  return waiting && (main || schedulerState(`${dir}/stat`) === 'S');
}

/** The scheduler's state (S asleep, R runnable, T stopped, …) in a /proc stat file. */
function schedulerState(file: string): string | undefined {
  try {
    const stat = readFileSync(file, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2);
  } catch {
    return undefined;
  }
}
