/**
 * Isolate workers (`type: "isolate"`): the delegate and its attachments, bundled for a neutral
 * platform, run in an isolated-vm sandbox: a V8 isolate of its own with a heap limit, no
 * `process`, no `require` beyond the helper module, no network and no files. The only ways
 * out are the `emit` and `log` functions of the context each message is handed.
 *
 * One isolate per worker revision, reused for every message (messages may interleave when the
 * handler awaits); a fatal error — memory limit, timeout — disposes it and the next message
 * builds a fresh one. This file is the host side only; what runs inside the isolate around the
 * bundle is workers-runtime/isolate/.
 */
import { readFileSync } from 'node:fs';
import { LivelyError, describeError, isLivelyError } from '../../shared/errors.ts';
import { silentLogger, type Logger } from '../../shared/logger.ts';
import type { EmitCommand, LogLine, WorkerMessage, WorkerOutcome } from '../../shared/message.ts';
import { kTooDeep, messageLine, nestedDeeperThan } from '../../shared/json.ts';
import { Bundler, type Bundle } from '../bundler.ts';
import type { DispatchContext, Dispatcher, DispatcherStats, WorkerFigures } from '../dispatcher.ts';
import type { WorkerSpec } from '../revision.ts';
import { SlotTable } from '../../shared/slots.ts';
import { bundleFileName, StackMapper } from '../../../workers-runtime/stack.ts';
import { cutLogLine } from '../../../workers-runtime/protocol.ts';
import { enginePackageFor, loadIsolateEngine, type IsolateEngine, type IsolateEngineInfo, type IsolatedVm, type IvmIsolate, type IvmReference } from './isolate-engine.ts';

export interface IsolateDispatcherOptions {
  /** where bundles are cached across restarts. */
  cacheDir?: string;
  logger?: Logger;
  /** MB of heap when the document sets no `memory`. */
  defaultMemory?: number;
  /** log lines kept per message. */
  maxLogLines?: number;
  bundler?: Bundler;
  /** the isolate engine package to load (default: the one for the running Node line). */
  engine?: string;
}

const kDefaultOptions = { defaultMemory: 64, maxLogLines: 1000 };

/**
 * The code that runs inside the isolate around the bundle (workers-runtime/isolate/): read as
 * text once, and made one script with each bundle.
 */
const kPrelude = readFileSync(new URL('../../../workers-runtime/isolate/prelude.js', import.meta.url), 'utf8');
const kEpilogue = readFileSync(new URL('../../../workers-runtime/isolate/epilogue.js', import.meta.url), 'utf8');

interface Job { onEmit: (e: EmitCommand) => void; logs: LogLine[]; dropped: number }

/** Deadlines this close to one that passed pass with it (checkDeadlines). */
const kDeadlineSlackMs = 1;

/** A message sent (or about to be) into the isolate, until its answer comes back. */
interface Pending { id: number; line: string; secrets: Readonly<Record<string, string>>; deadline: number; timeoutMs: number; resolve(json: string | undefined): void; reject(err: unknown): void }

/** The lines of the script before the bundle's first line: the prelude and the wrapper's first line. */
const kBundleLineOffset = kPrelude.split('\n').length;

/** What a worker's handler threw, as the isolate told it (message and stack), never a limit of the runtime's. */
class HandlerError extends Error {
  constructor(readonly thrown: Error) { super(thrown.message); }
}

class Sandbox {
  readonly isolate: IvmIsolate;
  private run?: IvmReference;
  private queue: Pending[] = [];
  private readonly waiting = new Map<number, Pending>();
  /** messages running, by the token their calls back carry (see shared/slots.ts for why not a Map). */
  readonly jobs = new SlotTable<Job>();
  private stacks?: StackMapper;

  constructor(private readonly ivm: IsolatedVm, readonly spec: WorkerSpec, memoryMb: number, private readonly maxLogLines: number) {
    this.isolate = new ivm.Isolate({ memoryLimit: memoryMb });
  }

  get disposed(): boolean { return this.isolate.isDisposed; }

  async load(bundle: Bundle, timeoutMs: number): Promise<void> {
    const code = bundle.code;
    const context = await this.isolate.createContext();
    await context.global.set('__lc_emit', new this.ivm.Reference((token: string, name: string, params: string) => this.onEmit(token, name, params)));
    await context.global.set('__lc_log', new this.ivm.Reference((token: string, msg: string, level: string) => this.onLog(token, msg, level)));
    await context.global.set('__lc_done', new this.ivm.Reference((text: string) => this.onDone(text)));
    // the bundle is CommonJS; run it with the module object the prelude made
    const source = `${kPrelude}(function (module, exports, require) {\n${code}\n})(__module, __module.exports, globalThis.require);\n${kEpilogue}`;
    const frameFile = bundleFileName(bundle.key, 'isolate');
    this.stacks = new StackMapper({ frameFile, workerId: this.spec.id, loadMap: () => bundle.map, lineOffset: kBundleLineOffset, bundleLines: code.split('\n').length });
    const script = await this.isolate.compileScript(source, { filename: frameFile });
    await script.run(context, { timeout: timeoutMs });
    this.run = await context.global.get('__lc_run_batch', { reference: true });
    // worker code must not call the entry itself (it could pass another message's token)
    await context.global.delete('__lc_run_batch');
  }

  /**
   * Sends the message with the others of this turn in one call into the isolate (see
   * workers-runtime/isolate/epilogue.js); it answers through `__lc_done`. Resolves with the
   * result's JSON, rejects with what the handler threw or what stopped the isolate.
   */
  call(message: WorkerMessage, job: Job, timeoutMs: number, secrets: Readonly<Record<string, string>> = {}): Promise<string | undefined> {
    const line = messageLine(message);
    const id = this.jobs.add(job);
    return new Promise<string | undefined>((resolve, reject) => {
      const done = (): void => { this.waiting.delete(id); this.jobs.delete(id); };
      const deadline = performance.now() + timeoutMs;
      const p: Pending = { id, line, secrets, deadline, timeoutMs, resolve: (json) => { done(); resolve(json); }, reject: (err) => { done(); reject(err); } };
      this.waiting.set(id, p);
      this.queue.push(p);
      if (this.queue.length === 1) setImmediate(() => this.flush(timeoutMs));
      this.watch(deadline);
    });
  }

  /**
   * isolated-vm's `timeout` bounds synchronous execution only; a message still unanswered at its
   * deadline (a handler that loops after an `await`) is failed here and its isolate disposed.
   * One timer per sandbox, armed for the earliest deadline, rather than one per message.
   */
  private nextCheck = Infinity;
  private deadlineTimer?: NodeJS.Timeout;

  private watch(deadline: number): void {
    if (deadline >= this.nextCheck) return;
    clearTimeout(this.deadlineTimer);
    this.nextCheck = deadline;
    this.deadlineTimer = setTimeout(() => this.checkDeadlines(), Math.max(0, deadline - performance.now()));
  }

  private checkDeadlines(): void {
    this.nextCheck = Infinity;
    this.deadlineTimer = undefined;
    // Timers keep time by the millisecond: messages sent in one turn have deadlines microseconds
    // apart, and the timer may fire between them. They time out together, rather than the later
    // ones failing a moment after as "the isolate stopped" by the first one's disposal, which
    // could leave the message that never returned reported as stopped and another as timed out.
    const now = performance.now() + kDeadlineSlackMs;
    let earliest = Infinity;
    for (const p of [...this.waiting.values()]) {
      if (p.deadline <= now) {
        p.reject(new LivelyError('LC_WORKER_TIMEOUT', `worker "${this.spec.id}": no answer within ${p.timeoutMs} ms; its isolate was disposed`));
        this.dispose();
      } else if (p.deadline < earliest) {
        earliest = p.deadline;
      }
    }
    if (earliest !== Infinity && !this.disposed) this.watch(earliest);
  }

  private flush(timeoutMs: number): void {
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    if (this.disposed) {
      for (const p of batch) p.reject(new Error('the isolate was disposed'));
      return;
    }
    const tokens = JSON.stringify(batch.map((p) => String(p.id)));
    const lines = batch.map((p) => p.line).join('\n');
    const secrets = JSON.stringify(batch.map((p) => p.secrets));
    // Each message keeps its own deadline, counted from its dispatch (checkDeadlines disposes
    // the isolate, which stops synchronous code too); the batch's `timeout` is a backstop. The
    // batch settles once every message answered, or rejects when the isolate stopped.
    this.run!.apply(undefined, [tokens, lines, secrets], { timeout: timeoutMs * batch.length + 1000, result: { promise: true } }).then(
      () => {},
      (err: unknown) => { for (const p of batch) if (this.waiting.get(p.id) === p) p.reject(err); },
    );
  }

  /** Answers from the isolate: `[token, 0, result JSON | null]` or `[token, 1, message, stack | null]`. */
  private onDone(text: string): void {
    let answers: unknown;
    try { answers = JSON.parse(text); } catch { return; }
    if (!Array.isArray(answers)) return;
    for (const a of answers) {
      if (!Array.isArray(a) || typeof a[0] !== 'string' || !/^\d{1,16}$/.test(a[0])) continue;
      const p = this.waiting.get(Number(a[0]));
      if (!p) continue;
      if (a[1] === 0) { p.resolve(typeof a[2] === 'string' ? a[2] : undefined); continue; }
      const err = new Error(typeof a[2] === 'string' ? a[2] : 'the handler failed');
      err.stack = typeof a[3] === 'string' ? a[3] : `Error: ${err.message}`;
      p.reject(new HandlerError(err));
    }
  }

  dispose(): void {
    clearTimeout(this.deadlineTimer);
    if (!this.isolate.isDisposed) this.isolate.dispose();
  }

  /** The stack of an error the worker threw, in its own files (see workers-runtime/stack.ts). */
  stackOf(err: unknown): string | undefined {
    return this.stacks?.stackOf(err);
  }

  /** A token is a string from the sandbox: one that names no running message finds nothing. */
  private job(token: string): Job | undefined {
    return typeof token === 'string' && /^\d{1,16}$/.test(token) ? this.jobs.get(Number(token)) : undefined;
  }

  private onEmit(token: string, name: string, params: string): void {
    const job = this.job(token);
    if (!job || name.length === 0) return;
    if (typeof params === 'string' && nestedDeeperThan(params)) {
      this.onLog(token, `emit("${name}") was not sent: its parameters are ${kTooDeep}`, 'error');
      return;
    }
    let parameters: Record<string, unknown> = {};
    try {
      const p = JSON.parse(params);
      if (p && typeof p === 'object' && !Array.isArray(p)) parameters = p;
    } catch { /* not JSON-copyable: emitted without parameters */ }
    job.onEmit({ emit: name, parameters });
  }

  private onLog(token: string, msg: string, level: string): void {
    const job = this.job(token);
    if (!job) return;
    const lv = (['debug', 'info', 'warn', 'error'] as const).find((l) => l === level) ?? 'info';
    if (job.logs.length >= this.maxLogLines) { job.dropped++; return; }
    job.logs.push({ t: Date.now(), level: lv, msg: cutLogLine(msg) });
  }
}

export class IsolateDispatcher implements Dispatcher {
  readonly name = 'isolate';
  private readonly opts: typeof kDefaultOptions & IsolateDispatcherOptions & { logger: Logger };
  private readonly bundler: Bundler;
  /** worker id → the sandbox of its current revision (a promise while it loads). */
  private readonly sandboxes = new Map<string, { rev: string; sandbox: Promise<Sandbox>; ready?: Sandbox }>();
  private inFlight = 0;
  private closed = false;
  /** loaded on first use, so a Node without an engine still starts and serves other types. */
  private loaded?: IsolateEngine | LivelyError;

  constructor(options: IsolateDispatcherOptions = {}) {
    this.opts = { ...kDefaultOptions, logger: silentLogger, ...options };
    if (!Number.isFinite(this.opts.defaultMemory) || this.opts.defaultMemory < 8) {
      throw new LivelyError('LC_CONFIG', 'options.defaultMemory must be a number of MB, at least 8');
    }
    this.bundler = options.bundler ?? new Bundler();
  }

  serves(spec: WorkerSpec): boolean { return spec.type === 'isolate'; }

  /** Which isolated-vm serves isolate workers here, or why none does (for status and start-up). */
  engine(): IsolateEngineInfo {
    const node = process.versions.node;
    const e = this.load();
    if (e instanceof LivelyError) {
      const wanted = this.opts.engine ?? enginePackageFor();
      return { ...(wanted ? { package: wanted } : {}), node, error: { code: 'LC_ISOLATE_UNAVAILABLE', message: e.message } };
    }
    return { package: e.package, version: e.version, node };
  }

  problem(spec: WorkerSpec): Error | undefined {
    const e = this.serves(spec) ? this.load() : undefined;
    return e instanceof LivelyError ? e : undefined;
  }

  private load(): IsolateEngine | LivelyError {
    if (!this.loaded) {
      try {
        this.loaded = loadIsolateEngine(this.opts.engine ?? enginePackageFor());
      } catch (e) {
        this.loaded = isLivelyError(e) ? e : new LivelyError('LC_ISOLATE_UNAVAILABLE', describeError(e));
      }
    }
    return this.loaded;
  }

  async dispatch(ctx: DispatchContext): Promise<WorkerOutcome> {
    if (this.closed) throw new LivelyError('LC_SHUTTING_DOWN', 'the isolate dispatcher is closed');
    const { spec, message } = ctx;
    const started = Date.now();
    const job: Job = { onEmit: ctx.onEmit, logs: [], dropped: 0 };
    const done = (o: Pick<WorkerOutcome, 'status' | 'result' | 'error'>): WorkerOutcome => {
      if (job.dropped > 0) job.logs.push({ t: Date.now(), level: 'warn', msg: `${job.dropped} more log lines were not kept` });
      return { worker: spec.id, logs: job.logs, durationMs: Date.now() - started, ...o };
    };
    this.inFlight++;
    let sandbox: Sandbox | undefined;
    try {
      sandbox = await this.sandboxFor(spec);
      const left = Math.max(1, spec.limits.timeout - (Date.now() - started));
      const json = await sandbox.call(message, job, left, ctx.secrets);
      if (json !== undefined && nestedDeeperThan(json)) return done({ status: 'error', error: { code: 'LC_WORKER_ERROR', message: `result cannot be sent: ${kTooDeep}` } });
      return done({ status: 'ok', ...(json === undefined ? {} : { result: JSON.parse(json) }) });
    } catch (e) {
      if (e instanceof HandlerError) {
        const stack = sandbox && !sandbox.disposed ? sandbox.stackOf(e.thrown) : undefined;
        return done({ status: 'error', error: { code: 'LC_WORKER_ERROR', message: `worker "${spec.id}": ${e.message}`, ...(stack === undefined ? {} : { stack }) } });
      }
      const error = this.classify(spec, e, sandbox);
      // The stack of what the worker threw; not of a limit the runtime enforced.
      const stack = error.code === 'LC_WORKER_ERROR' && !isLivelyError(e) && sandbox && !sandbox.disposed ? sandbox.stackOf(e) : undefined;
      return done({ status: error.code === 'LC_WORKER_TIMEOUT' ? 'timeout' : 'error', error: { code: error.code, message: error.message, ...(stack === undefined ? {} : { stack }) } });
    } finally {
      this.inFlight--;
      if (sandbox?.disposed) this.forgetSandbox(spec.id, sandbox);
    }
  }

  async retire(workerId: string, currentRev?: string): Promise<void> {
    const held = this.sandboxes.get(workerId);
    if (!held || held.rev === currentRev) return;
    this.sandboxes.delete(workerId);
    const sandbox = await held.sandbox.catch(() => undefined);
    if (!sandbox) return;
    // in-flight messages keep their own reference; dispose once they are done
    await this.drain(sandbox, 30_000);
    sandbox.dispose();
  }

  stats(): DispatcherStats {
    return { name: this.name, warm: this.sandboxes.size, inFlight: this.inFlight };
  }

  workerStats(): Map<string, WorkerFigures> {
    const out = new Map<string, WorkerFigures>();
    for (const [id, { ready }] of this.sandboxes) {
      if (!ready || ready.disposed) continue;
      let memoryBytes: number | undefined;
      try {
        const heap = ready.isolate.getHeapStatisticsSync();
        memoryBytes = heap.used_heap_size + heap.externally_allocated_size;
      } catch { /* disposed between the check and the call */ }
      out.set(id, { warm: 1, memoryBytes });
    }
    return out;
  }

  async close(deadlineMs = 10_000): Promise<void> {
    this.closed = true;
    const held = [...this.sandboxes.values()];
    this.sandboxes.clear();
    const until = Date.now() + deadlineMs;
    await Promise.all(held.map(async (h) => {
      const s = await h.sandbox.catch(() => undefined);
      if (!s) return;
      await this.drain(s, Math.max(0, until - Date.now()));
      s.dispose();
    }));
  }

  private async drain(sandbox: Sandbox, ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (sandbox.jobs.size > 0 && Date.now() < until && !sandbox.disposed) await new Promise((r) => setTimeout(r, 20));
  }

  private sandboxFor(spec: WorkerSpec): Promise<Sandbox> {
    const held = this.sandboxes.get(spec.id);
    if (held && held.rev === spec.rev) return held.sandbox;
    if (held) void this.retire(spec.id, spec.rev);
    const sandbox = (async () => {
      const engine = this.load();
      if (engine instanceof LivelyError) throw engine;
      const bundle = await this.bundler.bundle(spec, { platform: 'neutral', cacheDir: this.opts.cacheDir });
      const s = new Sandbox(engine.ivm, spec, spec.limits.memory ?? this.opts.defaultMemory, this.opts.maxLogLines);
      try { await s.load(bundle, spec.limits.timeout); } catch (e) { s.dispose(); throw e; }
      this.opts.logger.debug('isolate loaded', { worker: spec.id, rev: spec.rev });
      return s;
    })();
    const entry: { rev: string; sandbox: Promise<Sandbox>; ready?: Sandbox } = { rev: spec.rev, sandbox };
    this.sandboxes.set(spec.id, entry);
    sandbox.then((s) => { entry.ready = s; }, () => {});
    // a revision that fails to load is tried again on the next message (the bundler keeps its own failures)
    sandbox.catch(() => { if (this.sandboxes.get(spec.id)?.sandbox === sandbox) this.sandboxes.delete(spec.id); });
    return sandbox;
  }

  private forgetSandbox(workerId: string, sandbox: Sandbox): void {
    const held = this.sandboxes.get(workerId);
    if (held) void held.sandbox.then((s) => { if (s === sandbox && this.sandboxes.get(workerId) === held) this.sandboxes.delete(workerId); }, () => {});
  }

  private classify(spec: WorkerSpec, e: unknown, sandbox?: Sandbox): LivelyError {
    if (isLivelyError(e)) return e;
    const msg = describeError(e);
    if (/memory limit/i.test(msg)) {
      return new LivelyError('LC_WORKER_MEMORY', `worker "${spec.id}": exceeded its memory limit of ${spec.limits.memory ?? this.opts.defaultMemory} MB; its isolate was disposed`);
    }
    if (/timed out/i.test(msg)) {
      sandbox?.dispose();
      return new LivelyError('LC_WORKER_TIMEOUT', `worker "${spec.id}": no answer within ${spec.limits.timeout} ms; its isolate was disposed`);
    }
    if (sandbox?.disposed) return new LivelyError('LC_WORKER_ERROR', `worker "${spec.id}": its isolate stopped: ${msg}`);
    return new LivelyError('LC_WORKER_ERROR', `worker "${spec.id}": ${msg}`);
  }
}
