/**
 * One worker revision loaded in one thread: its module, its simulated process, the messages
 * it is handling. A fault (uncaught error, process.exit) ends this instance only.
 */
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { EmitCommand, LogLevel, WorkerMessage } from '../../src/shared/message.ts';
import { LineSplitter, parseOutputLine } from '../../src/shared/output.ts';
import { describeError } from '../../src/shared/errors.ts';
import { cutLogLine, kMaxLogLineChars, kMaxLogsPerMessage, type ItemOutcome, type TaskGroup } from '../protocol.ts';
import { ExitSignal, simulateProcess } from './simulated-process.ts';
import { makeResponse } from './respond.ts';
import { makeWorkerRequire } from './require.ts';
import { release, runOwned, track, untrack, type Tracked } from './tracker.ts';
import { bundleFileName, kRuntimeFile, StackMapper } from '../stack.ts';
import { clearImmediate, clearInterval, clearTimeout, fromJson, setImmediate, setInterval, setTimeout } from './intrinsics.ts';

/** The compiled wrapper of a bundle: evaluated once per instance. */
export type ModuleFactory = (...args: unknown[]) => void;
export const kFactoryParams = ['exports', 'require', 'module', '__filename', '__dirname', 'process', 'console',
  'setTimeout', 'setInterval', 'setImmediate', 'clearTimeout', 'clearInterval', 'clearImmediate'];

export interface Reporter {
  done(rec: MessageRecord, outcome: ItemOutcome): void;
  emit(rec: MessageRecord, emit: EmitCommand): void;
}

export interface InstanceEnv {
  moduleRoot: string;
  couch(): unknown;
  reporter: Reporter;
  /** the instance ended (exit, crash, stop): forget it. */
  gone(inst: WorkerInstance): void;
}

const kNoSecrets: Readonly<Record<string, string>> = Object.freeze({});

export class MessageRecord {
  logs: ItemOutcome['logs'] = [];
  lineResult: unknown = undefined;
  hasLineResult = false;
  finished = false;
  tracked?: Tracked;
  private parsed?: WorkerMessage;
  constructor(readonly id: number, readonly line: string, readonly secrets: Readonly<Record<string, string>> = kNoSecrets) {}
  /** parsed on first use: a stdin-style worker only ever needs the line. */
  get message(): WorkerMessage {
    return (this.parsed ??= fromJson(this.line) as WorkerMessage);
  }
  /** lines past kMaxLogsPerMessage, counted rather than kept. */
  private dropped = 0;
  /** A line over 64 KiB is cut, as a process worker's output line is. */
  log(level: LogLevel, msg: string): void {
    if (this.logs.length >= kMaxLogsPerMessage) { this.dropped++; return; }
    this.logs.push({ t: Date.now(), level, msg: cutLogLine(msg) });
  }
  /** The logs for the outcome: with a last line saying how many were not kept, if any were not. */
  finalLogs(): ItemOutcome['logs'] {
    if (this.dropped > 0) {
      this.logs.push({ t: Date.now(), level: 'warn', msg: `${this.dropped} more log lines were not kept` });
      this.dropped = 0;
    }
    return this.logs;
  }
}

/** What a handler receives as its second argument. */
class HandlerContext {
  constructor(private readonly inst: WorkerInstance, private readonly rec: MessageRecord) {}
  get activation(): string { return this.rec.message.activation; }
  get message(): WorkerMessage { return this.rec.message; }
  get arguments(): Record<string, unknown> { return this.rec.message.arguments; }
  get parameters(): Record<string, unknown> { return this.rec.message.parameters; }
  get couch(): unknown { return this.inst.couch(); }
  /** the values of the secrets the worker document names (`"secrets": [...]`). */
  get secrets(): Readonly<Record<string, string>> { return this.rec.secrets; }
  emit(name: string, parameters: Record<string, unknown> = {}): void { this.inst.emitFor(this.rec, name, parameters); }
  log(msg: unknown, level: LogLevel = 'info'): void { this.rec.log(level, typeof msg === 'string' ? msg : describeError(msg)); }
  /** The message's result is this response (returned too, so `return ctx.respond(…)` reads well). */
  respond(status?: number, body?: unknown, headers?: Record<string, unknown>): Record<string, unknown> {
    const r = makeResponse(status, body, headers);
    this.rec.lineResult = r;
    this.rec.hasLineResult = true;
    return r;
  }
}

export class WorkerInstance {
  readonly key: string;
  readonly workerId: string;
  readonly rev: string;
  lastUsed = Date.now();
  idleMs: number;
  alive = true;
  retiring = false;
  private readonly inflight = new Map<number, MessageRecord>();
  private readonly timers = new Set<NodeJS.Timeout | NodeJS.Immediate>();
  private readonly stdin: Readable;
  private readonly stdinOwners: Tracked[] = [];
  private handler?: (msg: WorkerMessage, ctx: HandlerContext) => unknown;
  private readonly couchAllowed: boolean;
  private readonly stacks: StackMapper;

  constructor(group: TaskGroup, factory: ModuleFactory, private readonly env: InstanceEnv) {
    this.key = group.key;
    this.workerId = group.workerId;
    this.rev = group.rev;
    this.idleMs = group.idleMs;
    this.couchAllowed = group.couch;
    this.stacks = new StackMapper({
      frameFile: bundleFileName(group.key), workerId: group.workerId, callerFile: kRuntimeFile,
      loadMap: () => readFileSync(`${group.file}.map`, 'utf8'),
    });
    const out = new LineSplitter((line, cut) => this.onLine(line, 'stdout', cut), kMaxLogLineChars);
    const err = new LineSplitter((line, cut) => this.onLine(line, 'stderr', cut), kMaxLogLineChars);
    const sim = simulateProcess({
      argv: [process.execPath, group.delegate],
      env: group.env,
      onStdout: (c) => out.push(c),
      onStderr: (c) => err.push(c),
      onExit: (code) => this.exited(code),
    });
    this.stdin = sim.stdin;
    const module = { exports: {} as unknown, id: group.delegate, filename: group.delegate, loaded: false };
    const helper = () => this.helperApi();
    const inst = this;
    const wrap = (real: typeof setTimeout | typeof setInterval | typeof setImmediate, repeat: boolean) =>
      function (this: unknown, cb: unknown, ...rest: unknown[]) {
        if (typeof cb !== 'function') return (real as (...a: unknown[]) => unknown)(cb, ...rest);
        const args = real === setImmediate ? rest : rest.slice(1);
        const h = (real as (...a: unknown[]) => NodeJS.Timeout)(function (this: unknown) {
          if (!repeat) inst.timers.delete(h);
          if (!inst.alive) return;
          try { (cb as (...a: unknown[]) => void).apply(this, args); } catch (e) { inst.fault(e, 'uncaught exception'); }
        }, ...(real === setImmediate ? [] : [rest[0]]));
        inst.timers.add(h);
        return h;
      };
    const clear = (real: (h: never) => void) => (h: NodeJS.Timeout) => { inst.timers.delete(h); real(h as never); };
    factory(module.exports, makeWorkerRequire(env.moduleRoot, helper), module, group.delegate, '.', sim.process, sim.console,
      wrap(setTimeout, false), wrap(setInterval, true), wrap(setImmediate, false),
      clear(clearTimeout), clear(clearInterval), clear(clearImmediate));
    module.loaded = true;
    const ex = module.exports as { default?: unknown; handler?: unknown } | undefined;
    const fn = typeof ex === 'function' ? ex : typeof ex?.default === 'function' ? ex.default : typeof ex?.handler === 'function' ? ex.handler : undefined;
    this.handler = fn as typeof this.handler;
    if (!fn) this.trackStdin();
  }

  get busy(): boolean { return this.inflight.size > 0; }

  deliver(rec: MessageRecord): void {
    this.lastUsed = Date.now();
    this.inflight.set(rec.id, rec);
    const handler = this.handler;
    if (handler) {
      let ret: unknown;
      try { ret = handler(rec.message, new HandlerContext(this, rec)); } catch (e) { this.failed(rec, e); return; }
      if (ret !== null && typeof ret === 'object' && typeof (ret as Promise<unknown>).then === 'function') {
        (ret as Promise<unknown>).then((v) => this.succeeded(rec, v), (e) => this.failed(rec, e));
      } else {
        this.succeeded(rec, ret);
      }
      return;
    }
    rec.tracked = track(() => this.succeeded(rec, undefined));
    this.stdinOwners.push(rec.tracked);
    try { this.stdin.push(rec.line + '\n'); } catch (e) { this.fault(e, 'uncaught exception'); }
  }

  /**
   * Runs the worker's 'data' listeners inside the scope of the message(s) the chunk carries,
   * whether the stream emits at push time or later from a buffered chunk.
   */
  private trackStdin(): void {
    const stdin = this.stdin;
    const emit = stdin.emit;
    const owners = this.stdinOwners;
    stdin.emit = function (this: Readable, ev: string | symbol, ...args: unknown[]): boolean {
      if (ev !== 'data' || owners.length === 0) return emit.call(this, ev, ...args);
      const chunk = args[0] as string | Buffer;
      let lines = 0;
      for (let i = chunk.indexOf('\n'); i !== -1; i = chunk.indexOf('\n', i + 1)) lines++;
      const mine = owners.splice(0, Math.max(1, lines));
      try {
        return runOwned(mine[0]!, () => emit.call(this, ev, ...args));
      } finally {
        for (let i = 1; i < mine.length; i++) release(mine[i]!);
      }
    } as typeof stdin.emit;
  }

  couch(): unknown {
    if (!this.couchAllowed) throw new Error('this worker has no database access: set "couch": true in its document');
    return this.env.couch();
  }

  emitFor(rec: MessageRecord | undefined, name: string, parameters: Record<string, unknown>): void {
    if (rec && !rec.finished) this.env.reporter.emit(rec, { emit: name, parameters });
  }

  /** Old revision or idle: no new messages; stdin ends once the held ones are done. */
  retire(): void {
    this.retiring = true;
    if (this.inflight.size === 0) this.stop();
  }

  stop(): void {
    if (!this.alive) return;
    this.alive = false;
    this.env.gone(this);
    this.stdin.push(null);
    this.stdin.resume();
  }

  /** An error escaped the worker's code: everything it holds fails and the instance is dropped. */
  fault(err: unknown, kind: string): void {
    if (err instanceof ExitSignal) return;
    this.end('LC_WORKER_ERROR', `${kind}: ${describeError(err)}`, this.stacks.stackOf(err));
  }

  private exited(code: number): void {
    if (code === 0) {
      for (const rec of [...this.inflight.values()]) this.succeeded(rec, undefined);
      this.kill();
    } else {
      this.end('LC_WORKER_EXIT', `worker called process.exit(${code})`);
    }
  }

  private end(code: string, message: string, stack?: string): void {
    const error = stack === undefined ? { code, message } : { code, message, stack };
    for (const rec of [...this.inflight.values()]) this.finish(rec, { id: rec.id, status: 'error', error, logs: rec.finalLogs() });
    this.kill();
  }

  private kill(): void {
    if (this.alive) { this.alive = false; this.env.gone(this); }
    for (const h of this.timers) { clearTimeout(h as NodeJS.Timeout); clearImmediate(h as NodeJS.Immediate); }
    this.timers.clear();
    this.stdin.removeAllListeners('data');
  }

  private oldest(): MessageRecord | undefined {
    for (const rec of this.inflight.values()) return rec;
    return undefined;
  }

  /** `cut`: the line was longer than kMaxLogLineChars, and this is its start (never a command). */
  private onLine(line: string, stream: 'stdout' | 'stderr', cut: boolean): void {
    const rec = this.oldest();
    if (cut) { rec?.log(stream === 'stderr' ? 'error' : 'warn', cutLogLine(line, true)); return; }
    const cmd = parseOutputLine(line, stream);
    switch (cmd.kind) {
      case 'emit': this.emitFor(rec, cmd.emit.emit, cmd.emit.parameters); return;
      case 'log': rec?.log(cmd.level, cmd.msg); return;
      case 'acknowledges': return; // a thread worker's messages end when its handler does
      case 'result':
      case 'done':
        if (!rec) return;
        if (cmd.kind === 'result') { rec.lineResult = cmd.value; rec.hasLineResult = true; }
        if (!this.handler) this.succeeded(rec, undefined);
    }
  }

  private succeeded(rec: MessageRecord, value: unknown): void {
    const result = value === undefined && rec.hasLineResult ? rec.lineResult : value;
    this.finish(rec, { id: rec.id, status: 'ok', result, logs: rec.finalLogs() });
  }

  private failed(rec: MessageRecord, err: unknown): void {
    if (err instanceof ExitSignal) return;
    const stack = this.stacks.stackOf(err);
    const error = stack === undefined ? { code: 'LC_WORKER_ERROR', message: describeError(err) } : { code: 'LC_WORKER_ERROR', message: describeError(err), stack };
    this.finish(rec, { id: rec.id, status: 'error', error, logs: rec.finalLogs() });
  }

  private finish(rec: MessageRecord, outcome: ItemOutcome): void {
    if (rec.finished) return;
    rec.finished = true;
    if (rec.tracked) untrack(rec.tracked);
    this.inflight.delete(rec.id);
    this.lastUsed = Date.now();
    this.env.reporter.done(rec, outcome);
    if (this.retiring && this.inflight.size === 0) this.stop();
  }

  private helperApi(): unknown {
    const inst = this;
    return {
      emit(name: string, parameters: Record<string, unknown> = {}) { inst.emitFor(inst.oldest(), name, parameters); },
      log(msg: unknown, level: LogLevel = 'info') { inst.oldest()?.log(level, typeof msg === 'string' ? msg : describeError(msg)); },
      get couch() { return inst.couch(); },
      /** answers the message held longest, as a `result` line would: a stdin worker's message is then done. */
      respond(status?: number, body?: unknown, headers?: Record<string, unknown>) {
        const rec = inst.oldest();
        const r = makeResponse(status, body, headers);
        if (!rec) return r;
        rec.lineResult = r;
        rec.hasLineResult = true;
        if (!inst.handler) inst.succeeded(rec, undefined);
        return r;
      },
      /** the context of the message this instance has held longest (exact when one at a time). */
      context() { const rec = inst.oldest(); return rec ? new HandlerContext(inst, rec) : undefined; },
    };
  }
}
