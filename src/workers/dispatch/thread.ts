/**
 * Node workers (type "node", isolation "thread") in piscina thread pools.
 *
 * The code that runs inside threads (workers-runtime/thread) and worker revisions are bundled by
 * ../bundler.ts and cached on disk; a batch carries a bundle's key and file, never its code.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BroadcastChannel } from 'node:worker_threads';
import { availableParallelism, totalmem } from 'node:os';
import { LivelyError } from '../../shared/errors.ts';
import { silentLogger, type Logger } from '../../shared/logger.ts';
import { microseconds, type WorkerOutcome } from '../../shared/message.ts';
import { Bundler, bundleRuntimeFile, type Bundle, type BundlerStats } from '../bundler.ts';
import type { DispatchContext, Dispatcher, DispatcherStats, WorkerFigures } from '../dispatcher.ts';
import type { WorkerSpec } from '../revision.ts';
import type { Notice } from '../../../workers-runtime/protocol.ts';
import { ThreadPool } from './thread/pool.ts';

export interface ThreadDispatcherOptions {
  /** threads per pool (default: available cores). */
  threads?: number;
  /** where worker bundles and the thread runtime are written. */
  cacheDir: string;
  /** given to workers with `"couch": true` (helper API `couch`, env COUCHDB_URL). */
  couchUrl?: string;
  logger?: Logger;
  /** batches one thread works on at once: async workers must not hold a thread. */
  tasksPerThread?: number;
  /** messages per batch at most. */
  maxBatch?: number;
  /** environment every worker instance starts from (its document's `env` is laid over it). */
  baseEnv?: Record<string, string>;
  /** a bundler to share (the runtime's); by default the dispatcher has its own. */
  bundler?: Bundler;
  /**
   * MB of external memory (Buffers, ArrayBuffers: outside V8's heap, so outside `memory`) one
   * thread may hold when its workers set no `memory`: the guard that keeps one worker from taking
   * the machine. A worker's `memory` is also its thread's external limit.
   */
  externalMb?: number;
  /**
   * MB of resident memory the whole runtime process may reach (its threads included): past it,
   * the threads running messages are replaced and those messages fail with LC_WORKER_MEMORY.
   * What the per-thread check cannot see (a worker allocating in one synchronous run) meets this.
   */
  maxRssMb?: number;
}

interface FilledOptions extends Required<Omit<ThreadDispatcherOptions, 'couchUrl' | 'bundler'>> { couchUrl?: string }

export const kDefaultThreadOptions = Object.freeze({
  threads: availableParallelism(),
  tasksPerThread: 16,
  maxBatch: 64,
  logger: silentLogger,
  baseEnv: {} as Record<string, string>,
  // a quarter of the machine's memory shared by the threads, at most 1 GB each
  externalMb: Math.max(64, Math.min(1024, Math.floor(totalmem() / 1024 / 1024 / 4 / availableParallelism()))),
  maxRssMb: Math.floor(totalmem() / 1024 / 1024 * 0.75),
});

const kModuleRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const kRuntimeEntry = path.join(kModuleRoot, 'workers-runtime/thread/entry.ts');
let channels = 0;

function positiveInt(v: unknown, name: string): void {
  if (!Number.isInteger(v) || (v as number) < 1) throw new LivelyError('LC_CONFIG', `options.${name} must be a positive integer`);
}

interface Warm { bundle: Bundle; pool: ThreadPool; env: Record<string, string> }

export class ThreadDispatcher implements Dispatcher {
  readonly name = 'thread';
  readonly bundler: Bundler;
  private readonly opts: FilledOptions;
  private readonly pools = new Map<number, ThreadPool>();
  private readonly channel: BroadcastChannel;
  private readonly channelName: string;
  private entry?: Promise<string>;
  /** revisions ready to run: their bundle, pool and environment (a spec object is one revision). */
  private readonly warm = new WeakMap<WorkerSpec, Warm>();
  private closed = false;

  constructor(options: ThreadDispatcherOptions) {
    if (!options || typeof options.cacheDir !== 'string' || options.cacheDir.length === 0) {
      throw new LivelyError('LC_CONFIG', 'options.cacheDir must be a non-empty string');
    }
    const o = { ...kDefaultThreadOptions, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as FilledOptions & { bundler?: Bundler };
    positiveInt(o.threads, 'threads');
    positiveInt(o.tasksPerThread, 'tasksPerThread');
    positiveInt(o.maxBatch, 'maxBatch');
    o.cacheDir = path.resolve(o.cacheDir);
    this.opts = o;
    this.bundler = options.bundler ?? new Bundler();
    this.channelName = `livelycouch-thread-${process.pid}-${++channels}`;
    this.channel = new BroadcastChannel(this.channelName);
    this.channel.unref();
    this.rssGuard = setInterval(() => this.checkRss(), 200);
    this.rssGuard.unref();
  }

  private readonly rssGuard: NodeJS.Timeout;
  /** when the guard last replaced threads: it gives the memory a moment to be returned. */
  private guardFired = 0;

  /** The runtime-wide guard: one worker must not take the machine's memory. */
  private checkRss(): void {
    if (performance.now() - this.guardFired < 1000) return;
    const rss = process.memoryUsage.rss();
    if (rss <= this.opts.maxRssMb * 1048576) return;
    const why = `the runtime reached ${Math.round(rss / 1048576)} MB of memory (guard ${this.opts.maxRssMb} MB)`;
    let replaced = 0;
    for (const pool of this.pools.values()) replaced += pool.replaceBusy(why);
    if (replaced > 0) this.guardFired = performance.now();
    if (replaced > 0) this.opts.logger.error('memory guard: busy worker threads replaced', { rss: Math.round(rss / 1048576), maxRssMb: this.opts.maxRssMb, threads: replaced });
  }

  serves(spec: WorkerSpec): boolean {
    return spec.type === 'node' && spec.isolation !== 'process';
  }

  /** Builds the thread runtime now rather than on the first message. */
  start(): Promise<string> {
    this.entry ??= bundleRuntimeFile(kRuntimeEntry, this.opts.cacheDir, 'thread-runtime');
    return this.entry;
  }

  /**
   * Once a revision has its bundle and pool, its messages go to the pool without a turn through
   * the bundler's promise: the warm path is synchronous up to the thread hop.
   */
  dispatch(ctx: DispatchContext): Promise<WorkerOutcome> {
    const warm = this.warm.get(ctx.spec);
    if (warm && !this.closed) return this.enqueue(warm, ctx, performance.now());
    return this.dispatchCold(ctx);
  }

  private async dispatchCold(ctx: DispatchContext): Promise<WorkerOutcome> {
    if (this.closed) throw new LivelyError('LC_SHUTTING_DOWN');
    const t0 = performance.now();
    const { spec } = ctx;
    let bundle;
    try {
      bundle = await this.bundler.bundle(spec, { platform: 'node', cacheDir: this.opts.cacheDir });
    } catch (err) {
      const e = err as LivelyError;
      return { worker: spec.id, status: 'error', error: { code: e.code ?? 'LC_BUNDLE_FAILED', message: e.message }, logs: [], durationMs: microseconds(performance.now() - t0) };
    }
    const pool = this.poolFor(spec.limits.memory) ?? await this.createPool(spec.limits.memory);
    if (this.closed) throw new LivelyError('LC_SHUTTING_DOWN');
    const warm: Warm = { bundle, pool, env: this.envFor(spec) };
    this.warm.set(spec, warm);
    return this.enqueue(warm, ctx, t0);
  }

  private enqueue(warm: Warm, ctx: DispatchContext, t0: number): Promise<WorkerOutcome> {
    return new Promise<WorkerOutcome>((resolve) => {
      warm.pool.enqueue({
        id: 0, spec: ctx.spec, bundle: warm.bundle, message: ctx.message, env: warm.env, secrets: ctx.secrets, onEmit: ctx.onEmit, resolve,
        t0, attempts: 0, done: false, index: 0, deadline: 0,
      });
    });
  }

  private envFor(spec: WorkerSpec): Record<string, string> {
    const env: Record<string, string> = { ...this.opts.baseEnv, ...spec.env, LIVELY_WORKER: spec.id };
    if (spec.couch && this.opts.couchUrl) env.COUCHDB_URL = this.opts.couchUrl;
    return env;
  }

  private poolFor(memory: number | undefined): ThreadPool | undefined {
    return this.pools.get(memory ?? 0);
  }

  private creating = new Map<number, Promise<ThreadPool>>();

  private createPool(memory: number | undefined): Promise<ThreadPool> {
    const k = memory ?? 0;
    let p = this.creating.get(k);
    if (!p) {
      p = this.start().then((entry) => {
        const pool = new ThreadPool({
          entry, threads: this.opts.threads, tasksPerThread: this.opts.tasksPerThread, maxBatch: this.opts.maxBatch,
          memoryMb: memory || undefined, externalMb: memory || this.opts.externalMb, moduleRoot: kModuleRoot, couchUrl: this.opts.couchUrl, channel: this.channelName,
          logger: this.opts.logger,
        });
        this.pools.set(k, pool);
        return pool;
      });
      this.creating.set(k, p);
    }
    return p;
  }

  async retire(workerId: string, currentRev?: string): Promise<void> {
    if (currentRev === undefined) {
      this.bundler.forget(workerId);
      for (const pool of this.pools.values()) pool.forget(workerId);
    }
    const notice: Notice = { lc: 'retire', workerId, currentRev };
    this.channel.postMessage(notice);
  }

  /**
   * `utilization`: the share of thread time spent holding messages since each pool started,
   * averaged over pools; `batches`: tasks sent (messages per batch = messages / batches).
   */
  stats(): DispatcherStats & { queued: number; pools: number; threads: number; utilization: number; batches: number; bundles: BundlerStats } {
    let inFlight = 0, queued = 0, threads = 0, utilization = 0, batches = 0;
    for (const p of this.pools.values()) { inFlight += p.inFlight; queued += p.queued; threads += p.piscina.threads.length; utilization += p.utilization; batches += p.batches; }
    if (this.pools.size > 0) utilization /= this.pools.size;
    return { name: this.name, warm: threads, inFlight, queued, pools: this.pools.size, threads, utilization, batches, bundles: this.bundler.stats() };
  }

  workerStats(): Map<string, WorkerFigures> {
    const warm = new Map<string, number>();
    for (const pool of this.pools.values()) pool.warmThreads(warm);
    // threads are shared by every worker: memory is not told apart per worker
    return new Map([...warm].map(([id, n]) => [id, { warm: n }]));
  }

  async close(deadlineMs = 5_000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.rssGuard);
    const deadline = performance.now() + deadlineMs;
    await Promise.all([...this.creating.values()].map((p) => p.catch(() => undefined)));
    await Promise.all([...this.pools.values()].map((p) => p.drain(deadline)));
    const notice: Notice = { lc: 'close' };
    this.channel.postMessage(notice);
    // A moment for stdin 'end' handlers to run before the threads go.
    await new Promise((r) => setTimeout(r, Math.max(0, Math.min(100, deadline - performance.now()))));
    await Promise.all([...this.pools.values()].map((p) => p.destroy()));
    this.channel.close();
  }
}
