/**
 * One piscina pool (one per distinct memory limit) and the dispatch path into it.
 *
 * piscina owns the threads: it starts them with the pool's resource limits, keeps `threads` of
 * them alive and replaces one that dies. Messages do not travel as piscina tasks, though: each
 * thread opens a MessagePort of its own when it starts (a `hello` through piscina's message
 * channel) and batches go straight down it. A piscina task costs its bookkeeping on the main
 * thread for every batch (task record, async resource, balancer, timing histogram), which on a
 * busy runtime was the larger part of the hop to a thread; a port costs one postMessage.
 *
 * Throughput comes from batching: messages wait in `pending` until the next turn of the event
 * loop (or until a batch slot frees up under load), then go to the least busy thread several at
 * a time. Each batch owns a slot in a SharedArrayBuffer where the thread counts the items it
 * started, so when a thread dies the items it never started are sent again and only the started
 * ones fail — with the cause of the thread's death in their reason.
 */
import { withoutCredentials } from '../../../shared/credentials.ts';
import { Piscina } from 'piscina';
import { receiveMessageOnPort, type MessagePort, type Worker } from 'node:worker_threads';
import { microseconds, type EmitCommand, type WorkerMessage, type WorkerOutcome } from '../../../shared/message.ts';
import { describeError } from '../../../shared/errors.ts';
import type { Logger } from '../../../shared/logger.ts';
import { SlotTable } from '../../../shared/slots.ts';
import { messageLine } from '../../../shared/json.ts';
import type { WorkerSpec } from '../../revision.ts';
import type { Bundle } from '../../bundler.ts';
import type { BatchTask, Hello, ItemOutcome, Outbox, TaskGroup, ThreadInit } from '../../../../workers-runtime/protocol.ts';

export interface PoolItem {
  /** given by the pool when the item is enqueued. */
  id: number;
  spec: WorkerSpec;
  bundle: Bundle;
  message: WorkerMessage;
  env: Record<string, string>;
  secrets?: Readonly<Record<string, string>>;
  onEmit: (e: EmitCommand) => void;
  resolve: (o: WorkerOutcome) => void;
  t0: number;
  attempts: number;
  done: boolean;
  index: number;
  deadline: number;
  batch?: InFlightBatch;
}

interface InFlightBatch {
  slot: number;
  items: PoolItem[];
  thread: Thread;
  /** items the thread has not reported on yet: the slot is free again at 0. */
  unreported: number;
}

/** A started thread and the port its batches go down. */
interface Thread {
  worker: Worker;
  port: MessagePort;
  /** at most tasksPerThread; an array rather than a Set for the reason in shared/slots.ts. */
  batches: InFlightBatch[];
  /** why the thread ended: set by whoever ended it (a timeout) or by its 'error' event. */
  cause?: { code: string; message: string };
  /** when it last went from idle to busy (for utilization). */
  busySince: number;
  gone: boolean;
  /** worker id → when this thread was last sent its messages, and after how long idle its instance goes. */
  sent: Map<string, { at: number; idleMs: number }>;
}

export interface ThreadPoolOptions {
  entry: string;
  threads: number;
  tasksPerThread: number;
  maxBatch: number;
  memoryMb?: number;
  /** external memory a thread may hold (the pool's memoryMb, or the runtime-wide guard). */
  externalMb: number;
  moduleRoot: string;
  couchUrl?: string;
  channel: string;
  logger: Logger;
}

const kMaxAttempts = 3;
/** messages per turn below which they go to one thread as one batch, rather than waking several. */
const kSplitAbove = 8;

export class ThreadPool {
  readonly piscina: Piscina;
  private readonly items = new SlotTable<PoolItem>();
  private pending: PoolItem[] = [];
  private readonly freeSlots: number[] = [];
  private readonly progress: Int32Array;
  private readonly threads: Thread[] = [];
  /** batches sent to threads (messages per batch = sent messages / batches). */
  batches = 0;
  private inFlightBatches = 0;
  private flushScheduled = false;
  private closing = false;
  private readonly createdAt = performance.now();
  private busyMs = 0;
  private refs = 0;

  constructor(private readonly opts: ThreadPoolOptions) {
    const capacity = opts.threads * opts.tasksPerThread;
    const sab = new SharedArrayBuffer(4 * capacity);
    this.progress = new Int32Array(sab);
    for (let i = capacity - 1; i >= 0; i--) this.freeSlots.push(i);
    const workerData: ThreadInit = { moduleRoot: opts.moduleRoot, couchUrl: opts.couchUrl, progress: sab, channel: opts.channel, externalMb: opts.externalMb };
    this.piscina = new Piscina({
      filename: opts.entry,
      // Batches go to threads that said hello, never through piscina's queue, so piscina never
      // sees demand: the pool is kept at full size from the start.
      minThreads: opts.threads,
      maxThreads: opts.threads,
      // 'sync' would freeze a thread between tasks, and worker timers would never fire.
      atomics: 'disabled',
      execArgv: [],
      // each thread gets its own copy of the environment, without credentials: a worker that
      // reaches the real `process` finds no COUCHDB_URL or password in its env
      env: withoutCredentials(process.env),
      workerData,
      resourceLimits: opts.memoryMb ? { maxOldGenerationSizeMb: opts.memoryMb, maxYoungGenerationSizeMb: Math.max(1, Math.min(16, Math.floor(opts.memoryMb / 4))) } : undefined,
    });
    // piscina reports a thread that dies holding none of its tasks — every death, here — on
    // 'error', and without a listener that would take the whole runtime down. A thread that had
    // started is reported by its own 'error' and 'exit' listeners (attach); one that never
    // started means none may (piscina stops starting threads that fail while starting), so what
    // waits for a thread fails rather than waiting for ever.
    this.piscina.on('error', (err: unknown) => { if (this.threads.length === 0) this.cannotStart(err); });
    this.piscina.on('message', (m: Hello) => { if (m && m.lc === 'hello') this.attach(m); });
  }

  /** messages held: waiting, running, or timed out on a thread that has not ended yet. */
  get inFlight(): number { return this.items.size; }
  get queued(): number { return this.pending.length; }

  /** Share of the threads' time spent holding at least one batch since the pool started (0 to 1). */
  get utilization(): number {
    const now = performance.now();
    let busy = this.busyMs;
    for (const t of this.threads) if (t.batches.length > 0) busy += now - t.busySince;
    return Math.min(1, busy / (this.opts.threads * Math.max(1, now - this.createdAt)));
  }

  /** A thread started and opened its port: it takes batches from now on. */
  private attach(hello: Hello): void {
    const worker = this.piscina.threads.find((w) => w.threadId === hello.threadId);
    if (!worker || this.closing) { hello.port.close(); return; }
    const thread: Thread = { worker, port: hello.port, batches: [], busySince: 0, gone: false, sent: new Map() };
    hello.port.on('message', (text: string) => this.receive(text, thread));
    // Referenced like the others: a thread that starts while work is in flight may get some.
    if (this.refs > 0) hello.port.ref(); else hello.port.unref();
    worker.on('error', (err: unknown) => {
      const e = err as { code?: string };
      thread.cause ??= e?.code === 'ERR_WORKER_OUT_OF_MEMORY'
        ? { code: 'LC_WORKER_MEMORY', message: `the thread ran out of memory (limit ${this.opts.memoryMb ?? 'default'} MB)` }
        : { code: 'LC_WORKER_ERROR', message: `the thread ended: ${describeError(err)}` };
    });
    worker.once('exit', (code) => this.lost(thread, code));
    this.threads.push(thread);
    if (this.pending.length > 0) this.scheduleFlush();
  }

  /** Set once threads failed to start and none ever did: messages fail at once with it. */
  private startFailure?: string;

  private cannotStart(err: unknown): void {
    this.startFailure = `the worker threads could not start: ${describeError(err)}`;
    this.opts.logger.error('worker threads could not start', { pool: this.opts.memoryMb ?? 'default', reason: describeError(err) });
    const waiting = this.pending;
    this.pending = [];
    for (const it of waiting) this.fail(it);
  }

  private fail(it: PoolItem): void {
    this.items.delete(it.id);
    this.complete(it, { id: it.id, status: 'error', logs: [], error: { code: 'LC_WORKER_ERROR', message: this.startFailure! } });
  }

  enqueue(item: PoolItem): void {
    item.id = this.items.add(item);
    if (this.startFailure !== undefined && this.threads.length === 0) { this.fail(item); return; }
    this.pending.push(item);
    // An idle pool sends at once: a lone trigger should not wait a turn of the event loop.
    // Under load batches are in flight, and messages gather for the next turn.
    if (this.inFlightBatches === 0 && !this.flushScheduled && !this.closing) this.flush();
    else this.scheduleFlush();
  }

  /**
   * Per worker id: the threads likely to hold a warm instance of it — sent its messages within
   * its idle limit (a thread drops an instance idle longer). For the console, not the trigger path.
   */
  warmThreads(into: Map<string, number>): void {
    const now = performance.now();
    for (const t of this.threads) {
      if (t.gone) continue;
      for (const [id, { at, idleMs }] of t.sent) {
        if (now - at >= idleMs) { t.sent.delete(id); continue; }
        into.set(id, (into.get(id) ?? 0) + 1);
      }
    }
  }

  /** A deleted worker: no thread holds it any more. */
  forget(workerId: string): void {
    for (const t of this.threads) t.sent.delete(workerId);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.closing) return;
    this.flushScheduled = true;
    setImmediate(() => { this.flushScheduled = false; this.flush(); });
  }

  private flush(): void {
    while (this.pending.length > 0 && this.freeSlots.length > 0) {
      const thread = this.leastBusy();
      if (!thread) return; // none has started yet, or all are full: attach and release flush again
      const batches = Math.max(1, Math.min(this.freeSlots.length, this.threads.length, Math.ceil(this.pending.length / kSplitAbove)));
      const size = Math.min(this.opts.maxBatch, Math.ceil(this.pending.length / batches));
      this.send(thread, this.pending.splice(0, size));
    }
  }

  private leastBusy(): Thread | undefined {
    let best: Thread | undefined;
    for (const t of this.threads) {
      if (t.gone || t.batches.length >= this.opts.tasksPerThread) continue;
      if (!best || t.batches.length < best.batches.length) best = t;
    }
    return best;
  }

  private send(thread: Thread, list: PoolItem[]): void {
    // Items in the order the thread starts them (grouped by revision), which is what `progress` counts.
    const groups = new Map<string, { group: TaskGroup; items: PoolItem[] }>();
    let sent = 0;
    for (const it of list) {
      let line: string;
      try {
        line = messageLine(it.message);
      } catch (err) {
        // That message alone fails; the rest of the batch goes.
        this.items.delete(it.id);
        this.complete(it, { id: it.id, status: 'error', logs: [], error: { code: 'LC_WORKER_ERROR', message: describeError(err) } });
        continue;
      }
      sent++;
      let g = groups.get(it.bundle.key);
      if (!g) {
        g = { group: { key: it.bundle.key, workerId: it.spec.id, rev: it.spec.rev, file: it.bundle.file!, delegate: it.spec.delegate,
          env: it.env, couch: it.spec.couch, idleMs: it.spec.limits.idle, items: [], ...(it.secrets ? { secrets: { ...it.secrets } } : {}) }, items: [] };
        groups.set(it.bundle.key, g);
      }
      g.group.items.push({ id: it.id, line });
      g.items.push(it);
    }
    if (sent === 0) return;
    const sentAt = performance.now();
    for (const { group } of groups.values()) thread.sent.set(group.workerId, { at: sentAt, idleMs: group.idleMs });
    const slot = this.freeSlots.pop()!;
    this.batches++;
    Atomics.store(this.progress, slot, 0);
    const items: PoolItem[] = groups.size === 1 ? groups.values().next().value!.items : [];
    if (groups.size > 1) for (const g of groups.values()) items.push(...g.items);
    const batch: InFlightBatch = { slot, items, thread, unreported: sent };
    const now = performance.now();
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      it.index = i;
      it.deadline = now + it.spec.limits.timeout;
      it.batch = batch;
      if (it.deadline < this.nextCheck) this.watch(it.deadline);
    }
    this.inFlightBatches++;
    if (thread.batches.length === 0) thread.busySince = now;
    thread.batches.push(batch);
    if (this.refs++ === 0) this.ref(true);
    const task: BatchTask = { slot, groups: [] };
    for (const g of groups.values()) task.groups.push(g.group);
    try {
      thread.port.postMessage(task);
    } catch (err) {
      // Only what structured clone cannot copy gets here, and a message is its JSON line.
      this.release(batch);
      for (const it of items) {
        this.items.delete(it.id);
        this.complete(it, { id: it.id, status: 'error', logs: [], error: { code: 'LC_WORKER_ERROR', message: `the message could not be sent to a thread: ${describeError(err)}` } });
      }
    }
  }

  /** The ports are unreferenced while nothing is in flight, so an idle pool never keeps the process alive. */
  private ref(on: boolean): void {
    for (const t of this.threads) if (!t.gone) { if (on) t.port.ref(); else t.port.unref(); }
  }

  /**
   * One timer for the whole pool, due at the earliest deadline of any message in flight: a batch
   * costs no timer of its own (deadlines are mostly equal, so re-arming is rare).
   */
  private nextCheck = Infinity;
  private deadlineTimer?: NodeJS.Timeout;

  private watch(deadline: number): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.nextCheck = deadline;
    this.deadlineTimer = setTimeout(() => this.checkDeadlines(), Math.max(1, Math.ceil(deadline - performance.now())));
    this.deadlineTimer.unref();
  }

  private checkDeadlines(): void {
    this.deadlineTimer = undefined;
    this.nextCheck = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const thread of [...this.threads]) {
      const late: PoolItem[] = [];
      for (const batch of thread.batches) for (const it of batch.items) {
        if (it.done) continue;
        if (it.deadline <= now) late.push(it); else if (it.deadline < next) next = it.deadline;
      }
      if (late.length > 0) this.timedOut(thread, late);
    }
    if (next !== Infinity) this.watch(next);
  }

  private timedOut(thread: Thread, late: PoolItem[]): void {
    const names = [...new Set(late.map((it) => it.spec.id))].map((n) => `'${n}'`).join(', ');
    for (const it of late) {
      this.complete(it, { id: it.id, status: 'error', logs: [], error: { code: 'LC_WORKER_TIMEOUT', message: `worker '${it.spec.id}' did not finish within ${it.spec.limits.timeout} ms; its thread was replaced` } }, 'timeout');
    }
    // Ending the thread is the only way to stop an endless loop; piscina starts another.
    if (!thread.gone) {
      thread.cause ??= { code: 'LC_WORKER_ERROR', message: `worker ${names} timed out` };
      void thread.worker.terminate();
    }
  }

  private release(batch: InFlightBatch): void {
    const held = batch.thread.batches;
    const i = held.indexOf(batch);
    if (i === -1) return;
    held.splice(i, 1);
    if (held.length === 0) this.busyMs += performance.now() - batch.thread.busySince;
    this.freeSlots.push(batch.slot);
    this.inFlightBatches--;
    if (--this.refs === 0) this.ref(false);
    if (this.pending.length > 0) this.scheduleFlush();
  }

  /**
   * A thread ended (timeout, out of memory, an error no worker owned, or the pool closing).
   * What it reported before it went is taken first; then of each batch it held, the items it
   * had started fail with the cause and the others are sent again.
   */
  private lost(thread: Thread, exitCode: number): void {
    let out;
    while ((out = receiveMessageOnPort(thread.port)) !== undefined) this.receive(out.message as string, thread);
    thread.gone = true;
    thread.port.close();
    this.threads.splice(this.threads.indexOf(thread), 1);
    // No cause reported (an exit the thread could not tell about): the workers it had started
    // messages of are the ones that can have done it, and are named.
    const cause = thread.cause ?? { code: 'LC_WORKER_EXIT', message: `the thread exited with code ${exitCode} while running ${startedWorkers(thread, this.progress) || 'no worker'}` };
    if (thread.batches.length === 0) {
      // e.g. a timer a worker left behind ran the thread out of memory after its message was done
      if (!this.closing) this.opts.logger.warn('worker thread ended holding no messages', { pool: this.opts.memoryMb ?? 'default', reason: cause.message });
      return;
    }
    for (const batch of [...thread.batches]) {
      const started = Atomics.load(this.progress, batch.slot);
      this.release(batch);
      const names = [...new Set(batch.items.filter((it) => it.index < started).map((it) => `'${it.spec.id}'`))].join(', ');
      for (const it of batch.items) {
        if (it.done) { this.items.delete(it.id); continue; }
        if (this.closing || it.index < started || ++it.attempts >= kMaxAttempts) {
          this.items.delete(it.id);
          const message = cause.code === 'LC_WORKER_MEMORY' ? `${cause.message} while running worker ${names}` : `stopped because ${cause.message}`;
          this.complete(it, { id: it.id, status: 'error', logs: [], error: { code: cause.code, message } });
        } else {
          this.pending.unshift(it); // still held, under the same id
        }
      }
    }
    if (this.pending.length > 0) this.scheduleFlush();
  }

  /** An Outbox from a thread, as its JSON text. */
  private receive(text: string, thread: Thread): void {
    let out: Outbox;
    try {
      out = JSON.parse(text) as Outbox;
    } catch (err) {
      // Worker code that changed what the thread builds its report with (Array.prototype.join,
      // say): a report that cannot be read costs its thread, never the runtime.
      this.unreportable(thread, `the thread sent a report that could not be read (${describeError(err)})`);
      return;
    }
    if (out.fatal !== undefined) { this.unreportable(thread, `the thread could not report: ${out.fatal}`); return; }
    if (out.exit !== undefined) {
      // it is gone once this is read: its 'exit' says the rest, now with the culprit's name
      thread.cause ??= { code: 'LC_WORKER_EXIT', message: `worker '${out.exit.worker}' ended its thread (exit code ${out.exit.code})` };
      return;
    }
    if (out.memory !== undefined) {
      if (!thread.gone) {
        thread.cause ??= { code: 'LC_WORKER_MEMORY', message: `the thread ran out of memory (${out.memory})` };
        void thread.worker.terminate();
      }
      return;
    }
    for (const [id, emit] of out.emits) {
      const it = this.items.get(id);
      if (it && !it.done) {
        try { it.onEmit(emit); } catch (err) { this.opts.logger.warn('onEmit failed', { worker: it.spec.id, reason: describeError(err) }); }
      }
    }
    for (const o of out.done) {
      const it = this.items.get(o.id);
      if (!it) continue;
      // A timed-out item stays held until its thread reports it or ends: its batch slot with it.
      this.items.delete(o.id);
      if (!it.done) this.complete(it, o);
      const batch = it.batch!;
      if (--batch.unreported === 0) this.release(batch);
    }
  }

  /** Replaces every thread that is running messages (the runtime-wide memory guard); how many. */
  replaceBusy(why: string): number {
    let n = 0;
    for (const thread of this.threads) {
      if (thread.gone || thread.batches.length === 0) continue;
      thread.cause ??= { code: 'LC_WORKER_MEMORY', message: why };
      void thread.worker.terminate();
      n++;
    }
    return n;
  }

  /**
   * A thread whose reports cannot be trusted any more: only worker code that changed how the
   * thread serializes (a toJSON on Object.prototype, say) gets here. The thread goes, and what
   * it held fails with the cause, as after any other death.
   */
  private unreportable(thread: Thread, why: string): void {
    if (thread.gone) return;
    thread.cause ??= { code: 'LC_WORKER_ERROR', message: `${why}; it was replaced` };
    void thread.worker.terminate();
  }

  private complete(it: PoolItem, o: ItemOutcome, status: WorkerOutcome['status'] = o.status): void {
    it.done = true;
    const outcome: WorkerOutcome = { worker: it.spec.id, status, logs: o.logs, durationMs: microseconds(performance.now() - it.t0) };
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
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    for (const it of this.items.entries()) {
      if (!it.done) this.complete(it, { id: it.id, status: 'error', logs: [], error: { code: 'LC_SHUTTING_DOWN', message: 'the runtime stopped before this message finished' } });
    }
    this.items.clear();
    this.pending = [];
    for (const t of this.threads) t.port.close();
    await this.piscina.destroy();
  }
}

/** "worker 'a'" or "one of workers 'a', 'b'": whose messages a thread had started, or '' for none. */
function startedWorkers(thread: Thread, progress: Int32Array): string {
  const names = new Set<string>();
  for (const batch of thread.batches) {
    const started = Atomics.load(progress, batch.slot);
    for (const it of batch.items) if (it.index < started && !it.done) names.add(`'${it.spec.id}'`);
  }
  if (names.size === 0) return '';
  return names.size === 1 ? `worker ${[...names][0]}` : `one of workers ${[...names].join(', ')}`;
}
