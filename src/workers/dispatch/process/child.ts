/**
 * One worker process: an interpreter started on a revision's delegate, fed one JSON line per
 * message on its real stdin, its stdout parsed for commands. It is assumed to crash, hang,
 * flood its output or never answer; each of those ends the message with a clear outcome.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { LivelyError, describeError } from '../../../shared/errors.ts';
import type { Logger } from '../../../shared/log.ts';
import type { EmitCommand, LogLine, WorkerMessage } from '../../../shared/message.ts';
import { LineSplitter, parseOutputLine } from '../../../shared/output.ts';
import { messageLine } from '../../../shared/json.ts';
import { looksWaitingForInput } from './host.ts';

export interface ChildOptions {
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /** the user and group to run as (set when the runtime is root). */
  uid?: number;
  gid?: number;
  /** chars after which an output line is cut. */
  maxLine: number;
  /** log lines kept per message; the rest are counted. */
  maxLogLines: number;
  /** stderr lines quoted when the process dies mid-message. */
  stderrTail: number;
  /** ms of silence after which a message to a never-acknowledging process is done. */
  settleMs: number;
  /** ms between stdin end and SIGTERM, and between SIGTERM and SIGKILL. */
  killGraceMs: number;
  logger: Logger;
  label: string;
}

/** How one message ended inside a process. */
export type RunEnd =
  | { kind: 'ok'; result?: unknown; logs: LogLine[] }
  | { kind: 'crash'; error: LivelyError; logs: LogLine[] }
  | { kind: 'timeout'; error: LivelyError; logs: LogLine[] }
  | { kind: 'retired'; error: LivelyError; logs: LogLine[] };

interface Job {
  logs: LogLine[];
  dropped: number;
  result?: unknown;
  onEmit: (e: EmitCommand) => void;
  finish: (end: RunEnd) => void;
  flushed: boolean;
  settle?: NodeJS.Timeout;
  timer?: NodeJS.Timeout;
}

export class ChildWorker {
  readonly pid: number;
  /** resolves once the process is gone and its pipes are closed. */
  readonly closed: Promise<void>;
  private job?: Job;
  private ending = false;
  private dead = false;
  /** a process that has answered once is trusted to answer: silence no longer ends its messages. */
  private acknowledges = false;
  private readonly stderrTail: string[] = [];
  /** output chunks read so far, on either stream: tells whether output arrived since a check. */
  private chunks = 0;
  private killTimers: NodeJS.Timeout[] = [];

  private constructor(private readonly proc: ChildProcess, private readonly opts: ChildOptions) {
    this.pid = proc.pid!;
    const out = new LineSplitter((line, cut) => this.onLine(line, cut, 'stdout'), opts.maxLine);
    const err = new LineSplitter((line, cut) => this.onLine(line, cut, 'stderr'), opts.maxLine);
    proc.stdout!.setEncoding('utf8').on('data', (s: string) => { this.chunks++; out.push(s); });
    proc.stderr!.setEncoding('utf8').on('data', (s: string) => { this.chunks++; err.push(s); });
    proc.stdin!.on('error', () => { /* EPIPE: the process is gone; its exit reports that */ });
    // a grandchild holding stdout open must not keep a dead worker's message pending
    proc.once('exit', () => {
      const t = setTimeout(() => { proc.stdout?.destroy(); proc.stderr?.destroy(); }, 200);
      t.unref();
    });
    this.closed = new Promise((resolve) => {
      proc.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
        out.end(); err.end();
        this.dead = true;
        for (const t of this.killTimers) clearTimeout(t);
        this.onClose(code, signal);
        resolve();
      });
    });
  }

  /** Starts the interpreter; rejects LC_INTERPRETER_MISSING when it cannot be executed. */
  static start(opts: ChildOptions): Promise<ChildWorker> {
    return new Promise((resolve, reject) => {
      let proc: ChildProcess;
      try {
        proc = spawn(opts.command, opts.args, {
          cwd: opts.cwd,
          env: opts.env,
          ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid ?? opts.uid } : {}),
          stdio: ['pipe', 'pipe', 'pipe'],
          // its own process group: killed as a whole, and not hit by signals aimed at the runtime
          detached: true,
        });
      } catch (e) {
        reject(new LivelyError('LC_WORKER_ERROR', `${opts.label}: cannot start ${opts.command}: ${describeError(e)}`));
        return;
      }
      proc.once('error', (e: NodeJS.ErrnoException) => {
        if (proc.pid !== undefined) return; // a later error on a running process: its exit reports it
        reject(e.code === 'ENOENT' || e.code === 'EACCES'
          ? new LivelyError('LC_INTERPRETER_MISSING', `${opts.label}: interpreter "${opts.command}" cannot be executed (${e.code})`)
          : new LivelyError('LC_WORKER_ERROR', `${opts.label}: cannot start ${opts.command}: ${e.message}`));
      });
      proc.once('spawn', () => resolve(new ChildWorker(proc, opts)));
    });
  }

  get busy(): boolean { return this.job !== undefined; }
  get alive(): boolean { return !this.dead && !this.ending; }

  /** Sends one message; resolves when the process answers, goes quiet, dies or times out. */
  run(message: WorkerMessage, onEmit: (e: EmitCommand) => void, timeoutMs: number): Promise<RunEnd> {
    if (this.job) throw new Error('ChildWorker.run while a message is in flight');
    const line = messageLine(message) + '\n';
    return new Promise<RunEnd>((resolve) => {
      const job: Job = {
        logs: [], dropped: 0, onEmit, flushed: false,
        finish: (end) => {
          if (this.job !== job) return;
          this.job = undefined;
          clearTimeout(job.settle); clearTimeout(job.timer);
          if (job.dropped > 0) end.logs.push({ t: Date.now(), level: 'warn', msg: `${job.dropped} more output lines were not kept` });
          resolve(end);
        },
      };
      this.job = job;
      if (this.dead) { this.failJob(job, 'crash', new LivelyError('LC_WORKER_EXIT', `${this.opts.label}: process exited before the message was sent`)); return; }
      job.timer = setTimeout(() => {
        this.failJob(job, 'timeout', new LivelyError('LC_WORKER_TIMEOUT', `${this.opts.label}: no answer within ${timeoutMs} ms; the process was killed`));
        this.kill();
      }, timeoutMs);
      this.proc.stdin!.write(line, (err) => {
        if (err || this.job !== job) return;
        job.flushed = true;
        this.armSettle(job);
      });
    });
  }

  /** Ends stdin (the worker's cue to exit); kills the group if it lingers. */
  end(): void {
    if (this.ending || this.dead) return;
    this.ending = true;
    this.proc.stdin!.end();
    this.later(this.opts.killGraceMs, () => this.kill());
  }

  /** SIGTERM to the whole group, SIGKILL after the grace period. */
  kill(): void {
    if (this.dead) return;
    this.ending = true;
    this.signal('SIGTERM');
    this.later(this.opts.killGraceMs, () => this.signal('SIGKILL'));
  }

  /** SIGKILL to the whole group now (a shutdown deadline passed). */
  forceKill(): void {
    this.ending = true;
    this.signal('SIGKILL');
  }

  signal(sig: NodeJS.Signals): void {
    if (this.dead) return;
    try { process.kill(-this.pid, sig); } catch { /* group already gone */ }
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(fn, ms);
    t.unref();
    this.killTimers.push(t);
  }

  /**
   * The never-acknowledging rule: once the line is in the pipe, a message is done when the
   * process has been silent for `settleMs` and the kernel shows it waiting for input again.
   */
  private armSettle(job: Job): void {
    if (this.acknowledges || !job.flushed) return;
    clearTimeout(job.settle);
    job.settle = setTimeout(() => {
      if (this.job !== job) return;
      if (!looksWaitingForInput(this.pid)) { this.armSettle(job); return; }
      // The process may have answered and gone back to its read while this loop was busy: its
      // output is then in the pipe, unread, and ending the message now would lose it (its emits
      // and result). Anything written before the check above is readable in the next poll
      // phase, which runs before an immediate; end the message only if nothing came.
      const seen = this.chunks;
      setImmediate(() => {
        if (this.job !== job) return;
        if (this.chunks === seen) job.finish({ kind: 'ok', logs: job.logs });
        else this.armSettle(job);
      });
    }, this.opts.settleMs);
  }

  private onLine(line: string, cut: boolean, stream: 'stdout' | 'stderr'): void {
    if (stream === 'stderr') {
      this.stderrTail.push(line.length > 500 ? line.slice(0, 500) + '…' : line);
      if (this.stderrTail.length > this.opts.stderrTail) this.stderrTail.shift();
    }
    const job = this.job;
    if (!job) {
      this.opts.logger.debug('worker output outside a message', { worker: this.opts.label, pid: this.pid, stream, line: line.slice(0, 200) });
      return;
    }
    if (cut) {
      this.keep(job, stream === 'stderr' ? 'error' : 'warn', `${line} … [line cut at ${this.opts.maxLine} chars]`);
    } else {
      const cmd = parseOutputLine(line, stream);
      switch (cmd.kind) {
        case 'emit':
          try { job.onEmit(cmd.emit); } catch (e) { this.keep(job, 'error', `emit "${cmd.emit.emit}" failed: ${describeError(e)}`); }
          break;
        case 'result':
          this.acknowledges = true;
          job.finish({ kind: 'ok', result: cmd.value, logs: job.logs });
          return;
        case 'done':
          this.acknowledges = true;
          job.finish({ kind: 'ok', result: job.result, logs: job.logs });
          return;
        case 'log':
          this.keep(job, cmd.level, cmd.msg);
          break;
      }
    }
    this.armSettle(job);
  }

  private keep(job: Job, level: LogLine['level'], msg: string): void {
    if (job.logs.length < this.opts.maxLogLines) job.logs.push({ t: Date.now(), level, msg });
    else job.dropped++;
  }

  private failJob(job: Job, kind: 'crash' | 'timeout' | 'retired', error: LivelyError): void {
    job.finish({ kind, error, logs: job.logs } as RunEnd);
  }

  private onClose(code: number | null, signal: NodeJS.Signals | null): void {
    const job = this.job;
    if (!job) return;
    // A clean exit ends the message (a one-shot script reads one line and exits) — unless the
    // runtime was stopping the process: then it exited on stdin end or a signal without answering.
    if (code === 0 && !this.ending) { job.finish({ kind: 'ok', result: job.result, logs: job.logs }); return; }
    if (this.ending) {
      const how = signal ? `stopped (${signal})` : `exited with code ${code} after its stdin was closed`;
      this.failJob(job, 'retired', new LivelyError('LC_WORKER_RETIRED', `${this.opts.label}: process ${how} while handling the message`));
      return;
    }
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    const tail = this.stderrTail.length ? `; last stderr lines:\n${this.stderrTail.join('\n')}` : '';
    this.failJob(job, 'crash', new LivelyError('LC_WORKER_EXIT', `${this.opts.label}: process ${how} while handling the message${tail}`,
      { exitCode: code, signal, stderr: [...this.stderrTail] }));
  }
}
