/**
 * One worker process: an interpreter started on a revision's delegate, fed one JSON line per
 * message on its real stdin, its stdout parsed for commands. It is assumed to crash, hang,
 * flood its output or never answer; each of those ends the message with a clear outcome.
 * A process that declares `{"pipeline": N}` may hold up to N messages at once: they are sent
 * with an `id`, written together once per turn of the event loop, and each answer goes to the
 * message its `id` names (an answer without one: the oldest message it holds).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { LivelyError, describeError } from '../../../shared/errors.ts';
import type { Logger } from '../../../shared/logger.ts';
import type { EmitCommand, LogLine, WorkerMessage } from '../../../shared/message.ts';
import { LineSplitter, headOf, parseOutputLine, type OutputCommand } from '../../../shared/output.ts';

/** A command line carrying a result: `{"result"` (as JSON.stringify and json.dumps write it). */
const kResultStart = /^\{\s*"result"\s*:/;
import { messageLine } from '../../../shared/json.ts';
import { looksWaitingForInput } from './host.ts';
import type { LateOutput } from '../../dispatcher.ts';

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
  /** chars after which a line starting with "{" is cut: a result line fails its message then. */
  maxCommandLine?: number;
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
  /** the worker document says it acknowledges every message (`"ack": true`): silence never ends one. */
  acknowledges?: boolean;
  /** MB of address space the process was limited to: a crash that says it ran out is LC_WORKER_MEMORY. */
  memoryMb?: number;
}


/** How one message ended inside a process. */
export type RunEnd =
  | { kind: 'ok'; result?: unknown; logs: LogLine[] }
  | { kind: 'crash'; error: LivelyError; logs: LogLine[] }
  | { kind: 'timeout'; error: LivelyError; logs: LogLine[] }
  | { kind: 'retired'; error: LivelyError; logs: LogLine[] }
  /** the process answered, but with what cannot be taken (a result line over the limit). */
  | { kind: 'error'; error: LivelyError; logs: LogLine[] };

interface Job {
  /** its `id` on the process's stdin (a pipelining process's messages carry it). */
  seq: number;
  /** the activation it belongs to, to name it when it takes others with it. */
  activation: string;
  logs: LogLine[];
  dropped: number;
  result?: unknown;
  onEmit: (e: EmitCommand) => void;
  finish: (end: RunEnd) => void;
  flushed: boolean;
  settle?: NodeJS.Timeout;
  timer?: NodeJS.Timeout;
  onLate?: (late: LateOutput) => void;
}

/** A message already ended, collecting what the process still writes for it until its next message. */
interface Late {
  job: Job;
  /** how the message ended: by silence (a guess) or by the process's own answer. */
  how: 'silence' | 'answer';
  out: LateOutput;
  dropped: number;
  timer?: NodeJS.Timeout;
}

/** What a process's stderr says when it ran out of memory (python, node, ruby, perl, C). */
const kOutOfMemory = /MemoryError|out of memory|Cannot allocate memory|bad_alloc|failed to allocate|NoMemoryError/i;

/**
 * Ended messages of a pipelining process that its late lines (by id) still find: a few, as a
 * message held longer outlives the young generation with all it refers to.
 */
const kRecentJobs = 16;

export class ChildWorker {
  readonly pid: number;
  /** resolves once the process is gone and its pipes are closed. */
  readonly closed: Promise<void>;
  /** messages sent and not yet ended, oldest first. */
  private readonly jobs: Job[] = [];
  /** messages the process may hold at once: 1 until it declares `{"pipeline": N}`. */
  private depth = 1;
  private seq = 0;
  /** lines waiting for this turn's write (a pipelining process's messages). */
  private outbox = '';
  private outboxScheduled = false;
  /** a pipelining process's messages ended lately, by id: their late lines still find them. */
  private readonly recent: Array<Job | undefined> = new Array(kRecentJobs).fill(undefined);
  /** late output of such messages being collected, by id. */
  private readonly lateById = new Map<number, Late>();
  /** why the runtime killed the process, for the messages that go with it. */
  private killedFor?: string;
  /** messages the dispatcher has promised to this process and not yet sent (ProcessDispatcher's count). */
  held = 0;
  private ending = false;
  private dead = false;
  /** a process that has answered once is trusted to answer: silence no longer ends its messages. */
  private acknowledges: boolean;
  /** the last message, ended by silence or answered: a line after that is its late output, until the next message. */
  private ended?: { job: Job; how: Late['how'] };
  /** made at the first such line. */
  private late?: Late;
  private readonly stderrTail: string[] = [];
  /** its stderr said it ran out of memory (node says so before a long native stack). */
  private saidOutOfMemory = false;
  /** output chunks read so far, on either stream: tells whether output arrived since a check. */
  private chunks = 0;
  private killTimers: NodeJS.Timeout[] = [];

  private constructor(private readonly proc: ChildProcess, private readonly opts: ChildOptions) {
    this.pid = proc.pid!;
    this.acknowledges = opts.acknowledges === true;
    const out = new LineSplitter((line, cut) => this.onLine(line, cut, 'stdout'), opts.maxLine, opts.maxCommandLine);
    const err = new LineSplitter((line, cut) => this.onLine(line, cut, 'stderr'), opts.maxLine);
    proc.stdout!.setEncoding('utf8').on('data', (s: string) => { this.chunks++; out.push(s); });
    proc.stderr!.setEncoding('utf8').on('data', (s: string) => { this.chunks++; err.push(s); });
    proc.stdin!.on('error', () => { /* EPIPE: the process is gone; its exit reports that */ });
    // a grandchild holding stdout open must not keep a dead worker's message pending
    proc.once('exit', () => {
      const t = setTimeout(() => { proc.stdout?.destroy(); proc.stderr?.destroy(); }, 200);
      t.unref();
      // What it started in the background (`sleep 288 &`) goes with it: SIGTERM to the group
      // now, SIGKILL after the grace period. The group id stays taken while anyone is in it.
      this.signalGroup('SIGTERM');
      const k = setTimeout(() => this.signalGroup('SIGKILL'), opts.killGraceMs);
      k.unref();
    });
    this.closed = new Promise((resolve) => {
      proc.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
        out.end(); err.end();
        this.dead = true;
        this.flushLate(true);
        for (const late of [...this.lateById.values()]) this.flushLate(false, late);
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

  get busy(): boolean { return this.jobs.length > 0; }
  get alive(): boolean { return !this.dead && !this.ending; }
  /** messages it may hold at once (1 until it declares pipelining). */
  get capacity(): number { return this.depth; }
  /** messages sent and not ended. */
  get inFlight(): number { return this.jobs.length; }

  /** The oldest message in flight: what a line without an id is for. */
  private get job(): Job | undefined { return this.jobs[0]; }

  /** Sends one message; resolves when the process answers, goes quiet, dies or times out. */
  run(message: WorkerMessage, onEmit: (e: EmitCommand) => void, timeoutMs: number, onLate?: (late: LateOutput) => void): Promise<RunEnd> {
    if (this.jobs.length >= this.depth) throw new Error(`ChildWorker.run with ${this.jobs.length} messages in flight (it takes ${this.depth})`);
    const pipelined = this.depth > 1;
    const seq = ++this.seq;
    // a pipelining process is told each message's id, which its answers carry back
    const json = messageLine(message);
    const line = pipelined ? `{"id":${seq},${json.slice(1)}\n` : json + '\n';
    // what the last message still wrote is its own, not this one's
    if (this.jobs.length === 0) {
      this.flushLate(true);
      this.ended = undefined;
    }
    return new Promise<RunEnd>((resolve) => {
      const job: Job = {
        seq, activation: message.activation, logs: [], dropped: 0, onEmit, flushed: false, onLate,
        finish: (end) => {
          const i = this.jobs.indexOf(job);
          if (i === -1) return;
          this.jobs.splice(i, 1);
          clearTimeout(job.settle); clearTimeout(job.timer);
          if (this.depth > 1) this.remember(job);
          if (job.dropped > 0) end.logs.push({ t: Date.now(), level: 'warn', msg: `${job.dropped} more output lines were not kept` });
          resolve(end);
        },
      };
      this.jobs.push(job);
      if (this.dead) { this.failJob(job, 'crash', new LivelyError('LC_WORKER_EXIT', `${this.opts.label}: process exited before the message was sent`)); return; }
      job.timer = setTimeout(() => {
        const others = this.jobs.length - 1;
        this.failJob(job, 'timeout', new LivelyError('LC_WORKER_TIMEOUT', `${this.opts.label}: no answer within ${timeoutMs} ms; the process was killed`));
        if (others > 0) this.killedFor = `message ${job.activation} passed its timeout`;
        this.kill();
      }, timeoutMs);
      if (pipelined) {
        job.flushed = true;
        this.outbox += line;
        if (!this.outboxScheduled) { this.outboxScheduled = true; setImmediate(() => this.flushOutbox()); }
        return;
      }
      this.proc.stdin!.write(line, (err) => {
        if (err || !this.jobs.includes(job)) return;
        job.flushed = true;
        this.armSettle(job);
      });
    });
  }

  /** One write for every message sent this turn. */
  private flushOutbox(): void {
    this.outboxScheduled = false;
    const text = this.outbox;
    this.outbox = '';
    if (text.length > 0 && !this.dead) this.proc.stdin!.write(text);
  }

  /** Keeps an ended message findable by its id for the late lines a pipelining process may still write. */
  private remember(job: Job): void {
    this.recent[job.seq % kRecentJobs] = job;
  }

  /** Ends stdin (the worker's cue to exit); kills the group if it lingers. */
  end(): void {
    if (this.ending || this.dead) return;
    this.ending = true;
    if (this.outbox.length > 0) this.flushOutbox();
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
    this.signalGroup(sig);
  }

  private signalGroup(sig: NodeJS.Signals): void {
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
      if (this.job !== job || this.acknowledges) return;
      if (!looksWaitingForInput(this.pid)) { this.armSettle(job); return; }
      // The process may have answered and gone back to its read while this loop was busy: its
      // output is then in the pipe, unread, and ending the message now would lose it (its emits
      // and result). Anything written before the check above is readable in the next poll
      // phase, which runs before an immediate; end the message only if nothing came.
      const seen = this.chunks;
      setImmediate(() => {
        if (this.job !== job || this.acknowledges) return;
        if (this.chunks !== seen) { this.armSettle(job); return; }
        job.finish({ kind: 'ok', logs: job.logs });
        // Silence is a guess: whatever the process still writes before its next message is
        // this message's, kept as late output of its activation.
        this.ended = { job, how: 'silence' };
      });
    }, this.opts.settleMs);
  }

  private onLine(line: string, cut: boolean, stream: 'stdout' | 'stderr'): void {
    if (stream === 'stderr') {
      this.stderrTail.push(line.length > 500 ? line.slice(0, 500) + '…' : line);
      if (this.opts.memoryMb !== undefined && kOutOfMemory.test(line)) this.saidOutOfMemory = true;
      if (this.stderrTail.length > this.opts.stderrTail) this.stderrTail.shift();
    }
    const cmd = cut ? undefined : parseOutputLine(line, stream);
    if (cmd?.kind === 'acknowledges' || cmd?.kind === 'pipeline') {
      // Said before or during a message: from now on only result/done (or the exit) end one.
      this.acknowledges = true;
      for (const j of this.jobs) clearTimeout(j.settle);
      if (cmd.kind === 'pipeline') this.depth = cmd.depth;
      return;
    }
    let job = this.job;
    if (cmd?.id !== undefined && this.depth > 1) {
      // A line that names its message goes to that message, or, ended, to its late output:
      // never to another one. An id the process was never sent is nobody's.
      job = this.jobs.find((j) => j.seq === cmd.id);
      if (!job) {
        const ended = this.recent[cmd.id % kRecentJobs];
        if (ended?.seq === cmd.id) this.onLateLine(this.lateFor(ended), line, cut, stream, cmd);
        else this.opts.logger.warn('worker output for a message it does not hold', { worker: this.opts.label, pid: this.pid, id: cmd.id, line: line.slice(0, 200) });
        return;
      }
    }
    if (!job) {
      if (!this.late && this.ended) this.late = { ...this.ended, out: { logs: [] }, dropped: 0 };
      if (this.late) this.onLateLine(this.late, line, cut, stream, cmd);
      else this.opts.logger.debug('worker output outside a message', { worker: this.opts.label, pid: this.pid, stream, line: line.slice(0, 200) });
      return;
    }
    if (cut && stream === 'stdout' && kResultStart.test(line)) {
      // Its end is still coming down the pipe; the splitter drops it up to the newline.
      this.acknowledges = true;
      const limit = this.opts.maxCommandLine ?? this.opts.maxLine;
      job.finish({ kind: 'error', error: new LivelyError('LC_RESPONSE_TOO_LARGE', `${this.opts.label}: the result line is over ${limit} chars`), logs: job.logs });
      return;
    }
    if (cmd === undefined) {
      this.keep(job, stream === 'stderr' ? 'error' : 'warn', `${headOf(line, this.opts.maxLine)} … [line cut at ${this.opts.maxLine} chars]`);
    } else {
      switch (cmd.kind) {
        case 'emit':
          try { job.onEmit(cmd.emit); } catch (e) { this.keep(job, 'error', `emit "${cmd.emit.emit}" failed: ${describeError(e)}`); }
          break;
        case 'result':
          this.acknowledges = true;
          this.ended = { job, how: 'answer' };
          job.finish({ kind: 'ok', result: cmd.value, logs: job.logs });
          return;
        case 'done':
          this.acknowledges = true;
          this.ended = { job, how: 'answer' };
          job.finish({ kind: 'ok', result: job.result, logs: job.logs });
          return;
        case 'log':
          this.keep(job, cmd.level, cmd.msg);
          break;
      }
    }
    this.armSettle(job);
  }

  /** The late output of an ended message of a pipelining process, collected until it is handed on. */
  private lateFor(job: Job): Late {
    if (this.late?.job === job) return this.late;
    const late = this.lateById.get(job.seq);
    if (late) return late;
    const made: Late = { job, how: 'answer', out: { logs: [] }, dropped: 0 };
    this.lateById.set(job.seq, made);
    return made;
  }

  /** A line written after its message ended: kept for that message, sent on shortly. */
  private onLateLine(late: Late, line: string, cut: boolean, stream: 'stdout' | 'stderr', cmd: OutputCommand | undefined): void {
    const why = late.how === 'silence' ? 'ended by silence' : 'answered';
    const keep = (level: LogLine['level'], msg: string) => {
      if (late.out.logs.length < this.opts.maxLogLines) late.out.logs.push({ t: Date.now(), level, msg: `late (after the message was ${why}): ${msg}` });
      else late.dropped++;
    };
    if (!cmd) keep(stream === 'stderr' ? 'error' : 'warn', `${line} … [line cut at ${this.opts.maxLine} chars]`);
    else if (cmd.kind === 'emit') {
      try { late.job.onEmit(cmd.emit); } catch (e) { keep('error', `emit "${cmd.emit.emit}" failed: ${describeError(e)}`); }
    } else if (cmd.kind === 'result' || cmd.kind === 'done') {
      // it does answer: silence will never end its messages again
      this.acknowledges = true;
      if (cmd.kind === 'result') late.out.result = cmd.value;
      keep('warn', `${cmd.kind === 'result' ? 'a result' : 'done'} came after the message was ${why}`);
    } else if (cmd.kind === 'log') keep(cmd.level, cmd.msg);
    clearTimeout(late.timer);
    late.timer = setTimeout(() => this.flushLate(false, late), this.opts.settleMs);
    late.timer.unref();
  }

  /** Hands what was collected late to its message's owner; collecting ends with a new message or the process. */
  private flushLate(end: boolean, late = this.late): void {
    if (!late) return;
    clearTimeout(late.timer);
    late.timer = undefined;
    if (end && late === this.late) { this.late = undefined; this.ended = undefined; }
    if (this.lateById.get(late.job.seq) === late) this.lateById.delete(late.job.seq);
    if (late.out.logs.length === 0 && late.out.result === undefined) return;
    const out = late.out;
    if (late.dropped > 0) out.logs.push({ t: Date.now(), level: 'warn', msg: `${late.dropped} more late output lines were not kept` });
    late.out = { logs: [] };
    late.dropped = 0;
    try { late.job.onLate?.(out); } catch (e) { this.opts.logger.warn('late worker output was not taken', { worker: this.opts.label, error: describeError(e) }); }
  }

  private keep(job: Job, level: LogLine['level'], msg: string): void {
    if (job.logs.length < this.opts.maxLogLines) job.logs.push({ t: Date.now(), level, msg });
    else job.dropped++;
  }

  private failJob(job: Job, kind: 'crash' | 'timeout' | 'retired' | 'error', error: LivelyError): void {
    job.finish({ kind, error, logs: job.logs } as RunEnd);
  }

  private onClose(code: number | null, signal: NodeJS.Signals | null): void {
    const job = this.job;
    if (!job) return;
    // Every message it held ends with it; those sent behind the oldest say how many it held.
    const held = this.jobs.length;
    const behind = (j: Job) => (j === job || held === 1 ? '' : ` (it held ${held} messages; this one was not answered)`);
    // A clean exit ends the message (a one-shot script reads one line and exits) — unless the
    // runtime was stopping the process: then it exited on stdin end or a signal without answering.
    if (code === 0 && !this.ending) {
      job.finish({ kind: 'ok', result: job.result, logs: job.logs });
      for (const j of [...this.jobs]) {
        this.failJob(j, 'crash', new LivelyError('LC_WORKER_EXIT', `${this.opts.label}: process exited with code 0 before answering the message${behind(j)}`, { exitCode: 0, signal: null }));
      }
      return;
    }
    if (this.ending) {
      const how = signal ? `stopped (${signal})` : `exited with code ${code} after its stdin was closed`;
      const why = this.killedFor ? ` because ${this.killedFor}` : '';
      for (const j of [...this.jobs]) this.failJob(j, 'retired', new LivelyError('LC_WORKER_RETIRED', `${this.opts.label}: process ${how}${why} while handling the message${behind(j)}`));
      return;
    }
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    const tail = this.stderrTail.length ? `; last stderr lines:\n${this.stderrTail.join('\n')}` : '';
    const details = { exitCode: code, signal, stderr: [...this.stderrTail] };
    for (const j of [...this.jobs]) {
      if (this.saidOutOfMemory) {
        this.failJob(j, 'crash', new LivelyError('LC_WORKER_MEMORY', `${this.opts.label}: process ran out of memory (limit ${this.opts.memoryMb} MB) and ${how}${behind(j)}${tail}`, details));
      } else {
        this.failJob(j, 'crash', new LivelyError('LC_WORKER_EXIT', `${this.opts.label}: process ${how} while handling the message${behind(j)}${tail}`, details));
      }
    }
  }
}
