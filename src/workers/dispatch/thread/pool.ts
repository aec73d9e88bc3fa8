/**
 * One piscina pool (one per distinct memory limit) and the dispatch path into it.
 *
 * Throughput comes from batching: messages wait in `pending` until the next turn of the event
 * loop (or until a batch slot frees up under load), then go to threads several at a time.
 * Each batch owns a slot in a SharedArrayBuffer where the thread counts the items it started,
 * so when a thread dies the items it never started are sent again and only the started ones
 * fail — with the cause of the thread's death in their reason.
 */
import { Piscina } from 'piscina';
import type { EmitCommand, WorkerMessage, WorkerOutcome } from '../../../shared/message.ts';
import { describeError } from '../../../shared/errors.ts';
import type { Logger } from '../../../shared/log.ts';
import type { WorkerSpec } from '../../spec.ts';
import type { Bundle } from '../../bundler.ts';
import type { BatchTask, ItemOutcome, Outbox, TaskGroup, ThreadInit } from '../../../../workers-runtime/protocol.ts';

export interface PoolItem {
  id: number;
  spec: WorkerSpec;
  bundle: Bundle;
  message: WorkerMessage;
  env: Record<string, string>;
  onEmit: (e: EmitCommand) => void;
  resolve: (o: WorkerOutcome) => void;
  t0: number;
  attempts: number;
  done: boolean;
  index: number;
  deadline: number;
}

interface InFlightBatch {
  slot: number;
  items: PoolItem[];
  timer?: NodeJS.Timeout;
}

export interface ThreadPoolOptions {
  entry: string;
  threads: number;
  tasksPerThread: number;
  maxBatch: number;
  memoryMb?: number;
  moduleRoot: string;
  couchUrl?: string;
  channel: string;
  logger: Logger;
}

const kMaxAttempts = 3;

export class ThreadPool {
  readonly piscina: Piscina;
  private readonly items = new Map<number, PoolItem>();
  private pending: PoolItem[] = [];
  private readonly freeSlots: number[] = [];
  private readonly progress: Int32Array;
  private readonly owners: Int32Array;
  /** why a thread we ended was ended, for the batches it takes down with it. */
  private readonly causes = new Map<number, string>();
  private readonly capacity: number;
  private inFlightBatches = 0;
  /** batches sent to threads (messages per batch = sent messages / batches). */
  batches = 0;
  private flushScheduled = false;
  private closing = false;

  constructor(private readonly opts: ThreadPoolOptions) {
    this.capacity = opts.threads * opts.tasksPerThread;
    const sab = new SharedArrayBuffer(4 * this.capacity);
    this.progress = new Int32Array(sab);
    const ownersSab = new SharedArrayBuffer(4 * this.capacity);
    this.owners = new Int32Array(ownersSab);
    for (let i = this.capacity - 1; i >= 0; i--) this.freeSlots.push(i);
    const workerData: ThreadInit = { moduleRoot: opts.moduleRoot, couchUrl: opts.couchUrl, progress: sab, owners: ownersSab, channel: opts.channel };
    this.piscina = new Piscina({
      filename: opts.entry,
      minThreads: opts.memoryMb ? 1 : opts.threads,
      maxThreads: opts.threads,
      concurrentTasksPerWorker: opts.tasksPerThread,
      // 'sync' would freeze a thread between tasks, and worker timers would never fire.
      atomics: 'disabled',
      idleTimeout: 60_000,
      execArgv: [],
      workerData,
      resourceLimits: opts.memoryMb ? { maxOldGenerationSizeMb: opts.memoryMb, maxYoungGenerationSizeMb: Math.max(1, Math.min(16, Math.floor(opts.memoryMb / 4))) } : undefined,
    });
    // A thread that dies while holding no task (e.g. a leftover timer ran it out of memory)
    // is reported here; without a listener it would take the whole runtime down.
    this.piscina.on('error', (err: unknown) => opts.logger.warn('worker thread ended outside a task', { pool: opts.memoryMb ?? 'default', reason: describeError(err) }));
    this.piscina.on('message', (m: Outbox) => { if (m && m.lc === 'out') this.receive(m); });
  }

  get inFlight(): number { return this.items.size; }
  get queued(): number { return this.pending.length; }

  enqueue(item: PoolItem): void {
    this.items.set(item.id, item);
    this.pending.push(item);
    // An idle pool sends at once: a lone trigger should not wait a turn of the event loop.
    // Under load batches are in flight, and messages gather for the next turn.
    if (this.inFlightBatches === 0 && !this.flushScheduled && !this.closing) this.flush();
    else this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.closing) return;
    this.flushScheduled = true;
    setImmediate(() => { this.flushScheduled = false; this.flush(); });
  }

  private flush(): void {
    while (this.pending.length > 0 && this.freeSlots.length > 0) {
      const batches = Math.max(1, Math.min(this.freeSlots.length, this.opts.threads, this.pending.length));
      const size = Math.min(this.opts.maxBatch, Math.ceil(this.pending.length / batches));
      this.send(this.pending.splice(0, size));
    }
  }

  private send(list: PoolItem[]): void {
    const slot = this.freeSlots.pop()!;
    this.batches++;
    Atomics.store(this.progress, slot, 0);
    Atomics.store(this.owners, slot, 0);
    const groups = new Map<string, TaskGroup>();
    for (const it of list) {
      let g = groups.get(it.bundle.key);
      if (!g) {
        g = { key: it.bundle.key, workerId: it.spec.id, rev: it.spec.rev, file: it.bundle.file!, delegate: it.spec.delegate,
          env: it.env, couch: it.spec.couch, idleMs: it.spec.limits.idle, items: [] };
        groups.set(it.bundle.key, g);
      }
      g.items.push({ id: it.id, line: JSON.stringify(it.message) });
    }
    const items: PoolItem[] = [];
    const now = performance.now();
    let first = Infinity;
    for (const g of groups.values()) for (const gi of g.items) {
      const it = this.items.get(gi.id)!;
      it.index = items.length;
      it.deadline = now + it.spec.limits.timeout;
      if (it.deadline < first) first = it.deadline;
      items.push(it);
    }
    const batch: InFlightBatch = { slot, items };
    this.inFlightBatches++;
    this.armTimer(batch, first - now);
    const task: BatchTask = { slot, groups: [...groups.values()] };
    // No AbortSignal: piscina runs an abortable task alone on its thread, which would stop
    // async workers from sharing threads. Timeouts end the thread themselves (checkDeadlines).
    this.piscina.run(task).then(
      (out: Outbox | undefined) => { this.release(batch); if (out) this.receive(out); },
      (err: unknown) => this.failed(batch, err),
    );
  }

  private armTimer(batch: InFlightBatch, ms: number): void {
    batch.timer = setTimeout(() => this.checkDeadlines(batch), Math.max(1, Math.ceil(ms)));
    batch.timer.unref();
  }

  private checkDeadlines(batch: InFlightBatch): void {
    const now = performance.now();
    const late: PoolItem[] = [];
    let next = Infinity;
    for (const it of batch.items) {
      if (it.done) continue;
      if (it.deadline <= now) late.push(it); else if (it.deadline < next) next = it.deadline;
    }
    if (late.length === 0) { if (next !== Infinity) this.armTimer(batch, next - now); return; }
    const names = [...new Set(late.map((it) => it.spec.id))].map((n) => `'${n}'`).join(', ');
    const cause = `worker ${names} timed out`;
    for (const it of late) {
      this.complete(it, { id: it.id, status: 'error', logs: [], error: { code: 'LC_WORKER_TIMEOUT', message: `worker '${it.spec.id}' did not finish within ${it.spec.limits.timeout} ms; its thread was replaced` } }, 'timeout');
    }
    // Ending the thread is the only way to stop an endless loop. A batch no thread has taken
    // yet is left to run; its late outcomes are ignored.
    const tid = Atomics.load(this.owners, batch.slot);
    const thread = tid ? this.piscina.threads.find((w) => w.threadId === tid) : undefined;
    if (thread) {
      this.causes.set(tid, cause);
      setTimeout(() => this.causes.delete(tid), 10_000).unref();
      void thread.terminate();
    }
  }

  private release(batch: InFlightBatch): void {
    if (batch.timer) clearTimeout(batch.timer);
    this.freeSlots.push(batch.slot);
    this.inFlightBatches--;
    if (this.pending.length > 0) this.scheduleFlush();
  }

  private failed(batch: InFlightBatch, err: unknown): void {
    const started = Atomics.load(this.progress, batch.slot);
    const tid = Atomics.load(this.owners, batch.slot);
    this.release(batch);
    const e = err as { code?: string; message?: string };
    let code = 'LC_WORKER_ERROR';
    let cause: string;
    if (this.causes.has(tid)) cause = this.causes.get(tid)!;
    else if (e?.code === 'ERR_WORKER_OUT_OF_MEMORY') {
      code = 'LC_WORKER_MEMORY';
      const names = [...new Set(batch.items.filter((it) => it.index < started).map((it) => `'${it.spec.id}'`))].join(', ');
      cause = `the thread ran out of memory (limit ${this.opts.memoryMb ?? 'default'} MB) while running worker ${names}`;
    } else cause = `the thread ended: ${describeError(err)}`;
    for (const it of batch.items) {
      if (it.done) continue;
      if (this.closing || it.index < started || ++it.attempts >= kMaxAttempts) {
        const message = code === 'LC_WORKER_MEMORY' ? cause : `stopped because ${cause}`;
        this.complete(it, { id: it.id, status: 'error', logs: [], error: { code, message } });
      } else {
        this.pending.unshift(it);
      }
    }
    if (this.pending.length > 0) this.scheduleFlush();
  }

  private receive(out: Outbox): void {
    for (const [id, emit] of out.emits) {
      const it = this.items.get(id);
      if (it && !it.done) {
        try { it.onEmit(emit); } catch (err) { this.opts.logger.warn('onEmit failed', { worker: it.spec.id, reason: describeError(err) }); }
      }
    }
    for (const o of out.done) {
      const it = this.items.get(o.id);
      if (it && !it.done) this.complete(it, o);
    }
  }

  private complete(it: PoolItem, o: ItemOutcome, status: WorkerOutcome['status'] = o.status): void {
    it.done = true;
    this.items.delete(it.id);
    const outcome: WorkerOutcome = { worker: it.spec.id, status, logs: o.logs, durationMs: performance.now() - it.t0 };
    if (o.result !== undefined) outcome.result = o.result;
    if (o.error) outcome.error = o.error;
    it.resolve(outcome);
  }

  /** Waits for held messages until `deadline` (a performance.now() time). */
  async drain(deadline: number): Promise<void> {
    while (this.items.size > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  }

  /** Fails whatever is still held and stops the threads. */
  async destroy(): Promise<void> {
    this.closing = true;
    for (const it of [...this.items.values()]) {
      this.complete(it, { id: it.id, status: 'error', logs: [], error: { code: 'LC_SHUTTING_DOWN', message: 'the runtime stopped before this message finished' } });
    }
    this.pending = [];
    await this.piscina.destroy();
  }
}
