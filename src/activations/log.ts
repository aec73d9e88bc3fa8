/**
 * Activation records in the logs database, written in batches so that logging never
 * throttles triggering: each flush writes ONE document holding every record since the last.
 * A document per firing would cost the store more than the firing itself at thousands of
 * triggers a second; a document per batch costs one write, and its columnar form (one array
 * per field, see BatchDoc) keeps it small: every activation is there with its events, workers,
 * statuses and duration; results, logs and errors are kept for every failed activation and for
 * the first `detailed` ones of each batch. `expandBatch` turns a batch back into records. Document ids start with the ISO time of their first record, so pruning is a
 * range read of `_all_docs` — no view needed, on CouchDB and on the embedded store alike.
 * When the store cannot keep up the buffer is bounded: records beyond it are dropped and
 * counted (`dropped` in status), never the triggers.
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
  /** a worker with a retry policy still failed after all its attempts: listed and re-runnable as dead. */
  dead?: boolean;
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
  /** the dead activations of the batch (absent when none). */
  dead?: string[];
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
  /** batches complete and not yet written, oldest first. */
  private pending: BatchDoc[] = [];
  /** the batch records go into now. */
  private current: BatchDoc | undefined;
  private detailedInCurrent = 0;
  private buffered = 0;
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
    this.maxBuffer = opts.maxBuffer ?? 50_000;
    this.maxBatch = opts.maxBatch ?? 20_000;
  }

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.flushMs);
    this.timer.unref();
    const prune = () => void this.prune().catch((err) => this.opts.logger.warn('pruning activation records failed', { error: describeError(err) }));
    prune();
    this.pruneTimer = setInterval(prune, 3_600_000);
    this.pruneTimer.unref();
  }

  /**
   * Appends to the columns at once: what stays in memory until the flush is a few strings
   * and numbers, not the outcome objects, which matters at thousands of records a second
   * (held objects outlive the young generation and make every GC expensive).
   */
  record(rec: ActivationRecord): void {
    if (this.buffered >= this.maxBuffer) { this.dropped++; return; }
    let doc = this.current;
    if (!doc) {
      doc = this.current = {
        _id: `${new Date(rec.started).toISOString()}-${rec.activation}-${(this.batchSeq++).toString(36)}`,
        type: 'activations', count: 0,
        activation: [], events: [], trigger: [], path: [], method: [], started: [], durationMs: [], workers: [], details: {},
      };
      this.detailedInCurrent = 0;
    }
    doc.activation.push(rec.activation);
    doc.events.push(rec.events.length === 1 ? rec.events[0]! : rec.events.join(','));
    doc.trigger.push(rec.trigger);
    doc.path.push(rec.path ?? null);
    doc.method.push(rec.method ?? null);
    doc.started.push(rec.started);
    doc.durationMs.push(Math.round(rec.durationMs * 100) / 100);
    let statuses = '';
    let failed = false;
    for (const w of rec.workers) {
      statuses += (statuses ? ',' : '') + w.worker + ':' + w.status;
      if (w.status !== 'ok') failed = true;
    }
    doc.workers.push(statuses);
    if (rec.dead) (doc.dead ??= []).push(rec.activation);
    if (failed || this.detailedInCurrent < (this.opts.detailed ?? 100)) {
      this.detailedInCurrent++;
      doc.details[rec.activation] = rec.workers.map(compact);
    }
    doc.count++;
    this.buffered++;
    if (doc.count >= this.maxBatch) this.seal();
  }

  private seal(): void {
    if (this.current) this.pending.push(this.current);
    this.current = undefined;
  }

  /** Writes what is buffered, one document per batch; concurrent callers share one write. */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    this.seal();
    if (this.pending.length === 0) return Promise.resolve();
    this.flushing = (async () => {
      try {
        while (this.pending.length > 0) {
          const doc = this.pending[0]!;
          try {
            // Stringified here: nano's own stringify runs a replacer over every key of a large batch.
            await this.db.server.request({ db: this.db.config.db, doc: doc._id, method: 'PUT', body: JSON.stringify(doc), dontStringify: true, headers: { 'content-type': 'application/json' } } as never);
          } catch (err) {
            // 409: written by an earlier attempt whose answer was lost. Anything else (the store
            // is away, restarting): keep the batch for the next flush.
            if ((err as { statusCode?: number }).statusCode !== 409) {
              this.opts.logger.debug('activation log write deferred', { error: describeError(err) });
              return;
            }
          }
          this.pending.shift();
          this.buffered -= doc.count;
          this.written += doc.count;
        }
      } finally {
        this.flushing = undefined;
      }
    })();
    return this.flushing;
  }

  /** The newest `limit` records, newest first: what is buffered, then the newest batches. */
  async recent(limit: number): Promise<ActivationRecord[]> {
    await this.flush();
    const out: ActivationRecord[] = [];
    const page = await this.db.list({ descending: true, startkey: '9', endkey: '0', include_docs: true, limit: 50 });
    for (const row of page.rows) {
      const doc = row.doc as unknown as BatchDoc | undefined;
      if (doc?.type !== 'activations') continue;
      out.push(...expandBatch(doc).reverse());
      if (out.length >= limit) break;
    }
    return out.slice(0, limit);
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
    ...(doc.dead?.includes(activation) ? { dead: true } : {}),
    workers: doc.details[activation] ?? (doc.workers[i] ? doc.workers[i]!.split(',') : []).map((ws) => {
      const at = ws.lastIndexOf(':');
      return { worker: ws.slice(0, at), status: ws.slice(at + 1) as WorkerOutcome['status'], logs: [], durationMs: 0 };
    }),
  }));
}
