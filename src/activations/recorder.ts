/**
 * Activation records, written as ONE columnar document per batch (./batch.ts) so that logging
 * never throttles triggering: a document per firing would cost the store more than the firing.
 * Details (results, logs, input) are kept for failed activations and the first `detailed` ok
 * ones; batches go to a database per UTC day (./record-days.ts), dropped by retention
 * (./retention.ts); reads are ./reader.ts. Past the bounded buffer, records are dropped and
 * counted, never the triggers.
 */
import { randomBytes } from 'node:crypto';
import type { WorkerOutcome } from '../shared/message.ts';
import type { ActivationInput, ActivationRecord } from './record.ts';
import type { Logger } from '../shared/logger.ts';
import { LivelyError, describeError } from '../shared/errors.ts';
import { isTransient, sendJson, statusOf, type ServerScope } from '../store/couch.ts';
import { BatchBuilder, batchId, kBatchSpanMs, kDayMs } from './batch.ts';
import { headOf } from '../shared/output.ts';
import { kSecretHeaders } from '../shared/credentials.ts';
import { dayDbName, dayStart, ensureDayDb } from './record-days.ts';
import { getActivation, listActivations, type ActivationPage, type ActivationQuery, type PageBudget } from './reader.ts';
import { pruneActivations, type DayCounts, type PruneResult } from './retention.ts';

export { expandBatch, type BatchDoc } from './batch.ts';
export type { ActivationInput, ActivationRecord } from './record.ts';

export interface ActivationLogOptions {
  /** the database prefix: records go to `<prefix>logs-YYYYMMDD`; `<prefix>logs` holds runtime state. */
  prefix: string;
  flushMs?: number;
  maxBuffer?: number;
  maxBatch?: number;
  /** ok activations per batch whose results, logs and input are kept (failures always are). */
  detailed?: number;
  /** a batch is sealed once its details reach about this many characters (default 2,000,000). */
  maxDetailChars?: number;
  retentionDays: number;
  /** records kept across all days; past it the oldest go first. */
  maxRecords: number;
  logger: Logger;
  /** how much one page of a listing may read before it answers with a cursor. */
  pageBudget?: Readonly<PageBudget>;
}

const kMaxResultChars = 16 * 1024;
/** A larger input (a big request body) is not kept: such an activation cannot be rerun. */
const kMaxInputChars = 64 * 1024;
const kMaxLogLines = 200;
/** A log line or error message kept in a record is cut to this many characters. */
const kMaxTextChars = 4 * 1024;
/**
 * Details per batch, in characters: well under CouchDB 3's default `max_document_size`
 * (8,000,000 bytes, measured in a form up to a third larger than the JSON).
 */
const kMaxBatchDetailChars = 2_000_000;
/**
 * Statuses with which the store refuses a document itself (too large for its
 * max_document_size, or not JSON it can read), so that writing it again cannot help. A 403 is
 * not one: a validation function that refuses every write is fixed by whoever installed it,
 * and the records wait for that (within the buffer).
 */
const kRefused = new Set([400, 413]);
/** What a stored outcome costs a batch besides its texts (field names, numbers, punctuation). */
const kOutcomeOverhead = 120;

/** `text` cut to `max` characters, saying how many were left out. */
function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  const head = headOf(text, max);
  return `${head}… (${text.length - head.length} more characters not kept)`;
}
/** Batches being filled at once: records of long activations start earlier than the rest. */
const kMaxOpen = 8;
/** Workers whose status summaries are kept for reuse (see ActivationLog.summary). */
const kMaxSummaries = 1_000;

/**
 * An outcome as a record keeps it: a result over 16 KiB as the start of its JSON, the last 200
 * log lines, each log line and the error's message cut to 4 KiB (stacks are already cut where
 * they are made). `chars` is about what it costs its batch document.
 */
function compact(w: WorkerOutcome): { outcome: WorkerOutcome; chars: number } {
  let chars = kOutcomeOverhead + w.worker.length;
  let result = w.result;
  if (result !== undefined) {
    const text = JSON.stringify(result);
    if (text !== undefined && text.length > kMaxResultChars) result = { truncated: headOf(text, kMaxResultChars) };
    chars += text === undefined ? 0 : Math.min(text.length, kMaxResultChars + 16);
  }
  let logs = w.logs.length > kMaxLogLines ? w.logs.slice(-kMaxLogLines) : w.logs;
  for (let i = 0; i < logs.length; i++) {
    const line = logs[i]!;
    if (line.msg.length > kMaxTextChars) {
      if (logs === w.logs) logs = w.logs.slice();
      logs[i] = { ...line, msg: cut(line.msg, kMaxTextChars) };
    }
    chars += 40 + logs[i]!.msg.length;
  }
  const out: WorkerOutcome = { ...w, result, logs };
  if (w.error) {
    if (w.error.message.length > kMaxTextChars) out.error = { ...w.error, message: cut(w.error.message, kMaxTextChars) };
    chars += out.error!.message.length + (out.error!.stack?.length ?? 0) + out.error!.code.length;
  }
  return { outcome: out, chars };
}

/** The input as stored: only its own fields (a FireInput carries more), and no credentials; undefined when too large. */
function storedInput(input: ActivationInput): { input: ActivationInput; chars: number } | undefined {
  const out: ActivationInput = { trigger: input.trigger, method: input.method, path: input.path, params: input.params };
  const req = input.request;
  if (req) {
    let headers = req.headers;
    for (const h of kSecretHeaders) {
      if (headers[h] !== undefined) {
        if (headers === req.headers) headers = { ...headers };
        delete headers[h];
      }
    }
    out.request = headers === req.headers ? req : { ...req, headers };
  }
  if (input.change !== undefined) out.change = input.change;
  if (input.tick !== undefined) out.tick = input.tick;
  let size = Infinity;
  try { size = JSON.stringify(out).length; } catch { /* not storable at all */ }
  return size <= kMaxInputChars ? { input: out, chars: size } : undefined;
}

interface OpenBatch {
  /** the records so far, in their stored form. */
  batch: BatchBuilder;
  /** set when the batch is sealed. */
  id: string;
  lo: number;
  hi: number;
  day: number;
  detailed: number;
  /** about what its details cost the document, in characters. */
  detailChars: number;
}

export class ActivationLog {
  /** batches complete and not yet written, oldest first. */
  private pending: OpenBatch[] = [];
  /** the batches records go into now; almost always one. */
  private open: OpenBatch[] = [];
  private buffered = 0;
  private batchSeq = 0;
  private readonly writer = randomBytes(4).toString('hex');
  /** day databases this log has created (or found) and secured. */
  private readonly ready = new Set<string>();
  private readonly counts: DayCounts = new Map();
  private readonly summaries = new Map<string, Map<string, string>>();
  private timer: NodeJS.Timeout | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private pruning: Promise<PruneResult> | undefined;
  private writtenSincePrune = 0;
  private readonly flushMs: number;
  private readonly maxBuffer: number;
  private readonly maxBatch: number;
  private readonly detailed: number;
  private readonly maxDetailChars: number;
  written = 0;
  dropped = 0;

  constructor(private readonly server: ServerScope, private readonly opts: ActivationLogOptions) {
    this.flushMs = opts.flushMs ?? 1_000;
    this.maxBuffer = opts.maxBuffer ?? 50_000;
    this.maxBatch = opts.maxBatch ?? 20_000;
    this.detailed = opts.detailed ?? 100;
    this.maxDetailChars = opts.maxDetailChars ?? kMaxBatchDetailChars;
    dayDbName(opts.prefix, 0); // a prefix that cannot name a day database fails now, not at the first flush
  }

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.flushMs);
    this.timer.unref();
    const prune = () => void this.prune();
    prune();
    this.pruneTimer = setInterval(prune, 3_600_000);
    this.pruneTimer.unref();
  }

  /**
   * Appends to the batch's stored form at once (./batch.ts says why): only detailed records
   * keep their outcomes and input until the flush.
   */
  record(rec: ActivationRecord): void {
    if (this.buffered >= this.maxBuffer) { this.dropped++; return; }
    // A start time that is not one would name no day (and throw in a timer, far from here).
    const s = Number.isFinite(rec.started) ? rec.started : Date.now();
    let b: OpenBatch | undefined;
    for (const o of this.open) {
      if ((s < o.lo ? o.hi - s : s > o.hi ? s - o.lo : 0) <= kBatchSpanMs && s >= o.day && s < o.day + kDayMs) { b = o; break; }
    }
    if (!b) b = this.openBatch(s);
    if (s < b.lo) b.lo = s;
    else if (s > b.hi) b.hi = s;
    let statuses = '';
    let failed = rec.dead === true;
    const ws = rec.workers;
    for (let i = 0; i < ws.length; i++) {
      const w = ws[i]!;
      const summary = w.attempts === undefined ? this.summary(w.worker, w.status) : `${w.worker}:${w.status}*${w.attempts}`;
      statuses = i === 0 ? summary : `${statuses},${summary}`;
      if (w.status !== 'ok') failed = true;
    }
    const batch = b.batch;
    batch.add(rec.activation, rec.events.length === 1 ? rec.events[0]! : rec.events.join(','), rec.trigger, rec.path ?? null,
      rec.method ?? null, s, Math.round(rec.durationMs * 100) / 100, statuses, rec.parent ?? null);
    if (failed || b.detailed < this.detailed || rec.lateOf !== undefined) {
      b.detailed++;
      const outcomes = new Array<WorkerOutcome>(ws.length);
      for (let i = 0; i < ws.length; i++) {
        const c = compact(ws[i]!);
        outcomes[i] = c.outcome;
        b.detailChars += c.chars;
      }
      batch.details[rec.activation] = outcomes;
      const input = rec.input && storedInput(rec.input);
      if (input) {
        batch.inputs[rec.activation] = input.input;
        b.detailChars += input.chars;
      }
    }
    if (rec.rerunOf !== undefined || rec.dead || rec.lateOf !== undefined) {
      batch.marks[rec.activation] = { ...(rec.rerunOf !== undefined ? { rerunOf: rec.rerunOf } : {}), ...(rec.dead ? { dead: true as const } : {}),
        ...(rec.lateOf !== undefined ? { lateOf: rec.lateOf } : {}) };
    }
    this.buffered++;
    if (batch.count >= this.maxBatch || b.detailChars >= this.maxDetailChars) this.seal(b);
  }

  /**
   * "worker:status", one string per worker and status, shared by every record of it: not a new
   * concatenation per record for the batch to keep, flatten and hash again.
   */
  private summary(worker: string, status: string): string {
    let byStatus = this.summaries.get(worker);
    if (byStatus === undefined) {
      // Bounded: worker names come and go over a runtime's life.
      if (this.summaries.size >= kMaxSummaries) this.summaries.clear();
      byStatus = new Map();
      this.summaries.set(worker, byStatus);
    }
    let text = byStatus.get(status);
    if (text === undefined) {
      text = `${worker}:${status}`;
      byStatus.set(status, text);
    }
    return text;
  }

  private openBatch(s: number): OpenBatch {
    if (this.open.length >= kMaxOpen) this.seal(this.open[0]!);
    const b: OpenBatch = {
      batch: new BatchBuilder(), id: '',
      lo: s, hi: s, day: dayStart(s), detailed: 0, detailChars: 0,
    };
    this.open.push(b);
    return b;
  }

  private seal(b: OpenBatch): void {
    this.open.splice(this.open.indexOf(b), 1);
    b.id = batchId(b.lo, b.hi, b.batch.count, this.writer + (this.batchSeq++).toString(36));
    this.pending.push(b);
  }

  /** Writes what is buffered, one document per batch; concurrent callers share one write. */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    while (this.open.length > 0) this.seal(this.open[0]!);
    if (this.pending.length === 0) return Promise.resolve();
    this.flushing = (async () => {
      try {
        while (this.pending.length > 0) {
          const b = this.pending[0]!;
          const db = dayDbName(this.opts.prefix, b.lo);
          if (!this.ready.has(db)) {
            try {
              await ensureDayDb(this.server, db);
              this.ready.add(db);
            } catch (err) {
              this.opts.logger.debug('activation log write deferred', { db, error: describeError(err) });
              return;
            }
          }
          const outcome = await this.write(db, b);
          if (outcome === 'dropped') continue;
          if (outcome === 'deferred') return;
          this.pending.shift();
          this.buffered -= b.batch.count;
          this.written += b.batch.count;
          this.writtenSincePrune += b.batch.count;
        }
      } finally {
        this.flushing = undefined;
      }
      if (this.writtenSincePrune >= Math.max(1_000, this.opts.maxRecords / 10)) void this.prune();
    })();
    return this.flushing;
  }

  /** Stringified here: nano's own stringify runs a replacer over every key of a large batch. */
  private async put(db: string, doc: object): Promise<void> {
    await sendJson(this.server, 'PUT', { db, doc: (doc as { _id: string })._id }, JSON.stringify(doc));
  }

  /**
   * Writes batch `b`. A batch the store refuses as a document (400 or 413: too large for its
   * max_document_size, or JSON it cannot read) would hold back every batch after it if it were
   * tried again: it is written again without its details (results, logs, errors, inputs), so
   * that its records stay listed with their statuses, and dropped and counted when the store
   * refuses that too. `deferred`: the store is away or restarting, a validation function
   * refuses, or the day database was dropped: the batch waits for the next flush.
   */
  private async write(db: string, b: OpenBatch): Promise<'written' | 'dropped' | 'deferred'> {
    const doc = b.batch.stored(b.id);
    let refusal: unknown;
    const put = () => this.put(db, doc).then(() => 'written' as const, (err: unknown) => { refusal = err; return this.failure(db, err); });
    let outcome = await put();
    if (outcome !== 'refused') return outcome;
    this.opts.logger.warn('the store refused a batch of activation records; it is written again without the records\' details', { db, batch: b.id, records: b.batch.count, reason: describeError(refusal) });
    doc.details = {};
    delete doc.inputs;
    outcome = await put();
    if (outcome !== 'refused') return outcome;
    this.opts.logger.error('the store refused a batch of activation records even without their details; they are dropped', { db, batch: b.id, records: b.batch.count, reason: describeError(refusal) });
    this.pending.shift();
    this.buffered -= b.batch.count;
    this.dropped += b.batch.count;
    return 'dropped';
  }

  /** A failed write: 409 is written (by an earlier attempt whose answer was lost). */
  private failure(db: string, err: unknown): 'written' | 'refused' | 'deferred' {
    const status = statusOf(err);
    if (status === 409) return 'written';
    if (status !== undefined && kRefused.has(status)) return 'refused';
    if (status === 404) this.ready.delete(db);
    this.opts.logger.debug('activation log write deferred', { db, error: describeError(err) });
    return 'deferred';
  }

  /** Everything recorded so far is written (or the store refused it): reads see it. */
  async settle(): Promise<void> {
    await this.flush();
    // A flush already running when this was called did not take the newest records.
    if (this.open.length > 0 || this.pending.length > 0) await this.flush();
  }

  /** Records newest first, filtered, one page at a time. */
  query(q: ActivationQuery): Promise<ActivationPage> {
    return this.read(() => listActivations(this.server, this.opts.prefix, q, this.opts.pageBudget));
  }

  /** The newest `limit` records, newest first. */
  async recent(limit: number): Promise<ActivationRecord[]> {
    return (await this.query({ limit })).activations;
  }

  /** One record by its activation id; undefined when there is none. */
  get(id: string): Promise<ActivationRecord | undefined> {
    return this.read(() => getActivation(this.server, this.opts.prefix, id));
  }

  /** A read after what is buffered is written; a store that is away is LC_STORE_UNAVAILABLE. */
  private async read<T>(fn: () => Promise<T>): Promise<T> {
    try {
      await this.settle();
      return await fn();
    } catch (err) {
      if (err instanceof LivelyError || !isTransient(err)) throw err;
      throw new LivelyError('LC_STORE_UNAVAILABLE', `activation records cannot be read now: ${describeError(err)}`);
    }
  }

  /**
   * Drops day databases past the retention period, then past `maxRecords` the oldest days and
   * the oldest batches of the oldest day kept. Never throws: a failure is logged and retried
   * at the next run. Concurrent callers share one run.
   */
  prune(now = Date.now()): Promise<PruneResult> {
    if (this.pruning) return this.pruning;
    this.writtenSincePrune = 0;
    this.pruning = (async () => {
      try {
        const result = await pruneActivations(this.server, this.opts.prefix, {
          now, retentionDays: this.opts.retentionDays, maxRecords: this.opts.maxRecords, counts: this.counts,
        });
        for (const name of result.droppedDays) this.ready.delete(name);
        return result;
      } catch (err) {
        this.opts.logger.warn('pruning activation records failed', { error: describeError(err) });
        return { droppedDays: [], deletedBatches: 0, deletedRecords: 0, legacyDeleted: 0 };
      } finally {
        this.pruning = undefined;
      }
    })();
    return this.pruning;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    await this.flush();
    await this.pruning;
  }
}
