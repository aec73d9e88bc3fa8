/**
 * Activation records in the logs database, written in batches so that logging never
 * throttles triggering: each flush writes ONE document holding every record since the last.
 * A document per firing would cost the store more than the firing itself at thousands of
 * triggers a second; a document per batch costs one write, and its columnar form (one array
 * per field, see BatchDoc) keeps it small: every activation is there with its events, workers,
 * statuses and duration; results, logs and errors are kept for every failed activation and for
 * the first `detailed` ones of each batch. `expandBatch` turns a batch back into records. Document ids start with the ISO time of their first record, so pruning is a
 * range read of `_all_docs` — no view needed, on CouchDB and on the embedded store alike.
 * When the store cannot keep up the buffer is bounded: the oldest unwritten records are
 * dropped and counted (`dropped` in status), never the triggers.
 */
import type { DocumentScope } from 'nano';
import type { WorkerOutcome, TriggerKind } from '../shared/message.ts';
import type { Logger } from '../shared/log.ts';
import { describeError } from '../shared/errors.ts';

export interface ActivationRecord {
  activation: string;
  events: string[];
  trigger: TriggerKind;
  path?: string;
  method?: string;
  started: number;
  durationMs: number;
  workers: WorkerOutcome[];
}

/** The stored form of one batch. Arrays are indexed by activation. */
export interface BatchDoc {
  _id: string;
  type: 'activations';
  count: number;
  activation: string[];
  /** the activation's events, comma-separated. */
  events: string[];
  trigger: TriggerKind[];
  path: Array<string | null>;
  method: Array<string | null>;
  /** ms since the epoch. */
  started: number[];
  durationMs: number[];
  /** per activation: "worker:status" for each worker, comma-separated. */
  workers: string[];
  /** activation → its workers' full outcomes (results, logs, errors). */
  details: Record<string, WorkerOutcome[]>;
}

export interface ActivationLogOptions {
  flushMs?: number;
  maxBuffer?: number;
  maxBatch?: number;
  /** ok activations per batch whose results and logs are kept (failures always are). */
  detailed?: number;
  retentionDays: number;
  logger: Logger;
}

const MAX_RESULT_CHARS = 16 * 1024;
const MAX_LOG_LINES = 200;

function compact(w: WorkerOutcome): WorkerOutcome {
  let result = w.result;
  if (result !== undefined) {
    const text = JSON.stringify(result);
    if (text !== undefined && text.length > MAX_RESULT_CHARS) result = { truncated: text.slice(0, MAX_RESULT_CHARS) };
  }
  const logs = w.logs.length > MAX_LOG_LINES ? w.logs.slice(-MAX_LOG_LINES) : w.logs;
  return { ...w, result, logs };
}

export class ActivationLog {
  private buffer: ActivationRecord[] = [];
  private batchSeq = 0;
  private timer: NodeJS.Timeout | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private readonly flushMs: number;
  private readonly maxBuffer: number;
  private readonly maxBatch: number;
  written = 0;
  dropped = 0;

  constructor(private readonly db: DocumentScope<Record<string, unknown>>, private readonly opts: ActivationLogOptions) {
    this.flushMs = opts.flushMs ?? 1_000;
    this.maxBuffer = opts.maxBuffer ?? 20_000;
    this.maxBatch = opts.maxBatch ?? 5_000;
  }

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.flushMs);
    this.timer.unref();
    const prune = () => void this.prune().catch((err) => this.opts.logger.warn('pruning activation records failed', { error: describeError(err) }));
    prune();
    this.pruneTimer = setInterval(prune, 3_600_000);
    this.pruneTimer.unref();
  }

  record(rec: ActivationRecord): void {
    if (this.buffer.length >= this.maxBuffer) {
      this.buffer.shift();
      this.dropped++;
    }
    this.buffer.push(rec);
  }

  /** Writes what is buffered; concurrent callers share one write. */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (this.buffer.length === 0) return Promise.resolve();
    this.flushing = (async () => {
      try {
        while (this.buffer.length > 0) {
          const batch = this.buffer.splice(0, this.maxBatch);
          try {
            // Stringified here: nano's own stringify runs a replacer over every key of a large batch.
            const doc = this.batchDoc(batch);
            await this.db.server.request({ db: this.db.config.db, doc: doc._id, method: 'PUT', body: JSON.stringify(doc), dontStringify: true, headers: { 'content-type': 'application/json' } } as never);
            this.written += batch.length;
          } catch (err) {
            // The store is away (restarting): put the batch back, bounded, and try on the next tick.
            this.buffer.unshift(...batch);
            const over = this.buffer.length - this.maxBuffer;
            if (over > 0) { this.buffer.splice(0, over); this.dropped += over; }
            this.opts.logger.debug('activation log write deferred', { error: describeError(err) });
            return;
          }
        }
      } finally {
        this.flushing = undefined;
      }
    })();
    return this.flushing;
  }

  private batchDoc(batch: ActivationRecord[]): BatchDoc {
    const first = batch[0]!;
    const doc: BatchDoc = {
      _id: `${new Date(first.started).toISOString()}-${first.activation}-${(this.batchSeq++).toString(36)}`,
      type: 'activations', count: batch.length,
      activation: [], events: [], trigger: [], path: [], method: [], started: [], durationMs: [], workers: [], details: {},
    };
    let detailed = 0;
    const budget = this.opts.detailed ?? 100;
    for (const rec of batch) {
      doc.activation.push(rec.activation);
      doc.events.push(rec.events.join(','));
      doc.trigger.push(rec.trigger);
      doc.path.push(rec.path ?? null);
      doc.method.push(rec.method ?? null);
      doc.started.push(rec.started);
      doc.durationMs.push(Math.round(rec.durationMs * 100) / 100);
      doc.workers.push(rec.workers.map((w) => `${w.worker}:${w.status}`).join(','));
      const failed = rec.workers.some((w) => w.status !== 'ok');
      if (failed || detailed < budget) {
        detailed++;
        doc.details[rec.activation] = rec.workers.map(compact);
      }
    }
    return doc;
  }

  /** Deletes batches older than the retention period. */
  async prune(now = Date.now()): Promise<number> {
    const cutoff = new Date(now - this.opts.retentionDays * 86_400_000).toISOString();
    let deleted = 0;
    for (;;) {
      const page = await this.db.list({ startkey: '0', endkey: cutoff, limit: 1000 });
      const docs = page.rows.filter((r) => !r.id.startsWith('_')).map((r) => ({ _id: r.id, _rev: r.value.rev, _deleted: true }));
      if (docs.length === 0) return deleted;
      await this.db.bulk({ docs });
      deleted += docs.length;
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    await this.flush();
  }
}

/** The records of one stored batch; outcomes without details carry worker and status only. */
export function expandBatch(doc: BatchDoc): ActivationRecord[] {
  return doc.activation.map((activation, i) => ({
    activation,
    events: doc.events[i] ? doc.events[i]!.split(',') : [],
    trigger: doc.trigger[i]!,
    ...(doc.path[i] !== null ? { path: doc.path[i]! } : {}),
    ...(doc.method[i] !== null ? { method: doc.method[i]! } : {}),
    started: doc.started[i]!,
    durationMs: doc.durationMs[i]!,
    workers: doc.details[activation] ?? (doc.workers[i] ? doc.workers[i]!.split(',') : []).map((ws) => {
      const at = ws.lastIndexOf(':');
      return { worker: ws.slice(0, at), status: ws.slice(at + 1) as WorkerOutcome['status'], logs: [], durationMs: 0 };
    }),
  }));
}
