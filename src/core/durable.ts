/**
 * The durable-event journal: an accepted HTTP trigger of a `"durable": true` event is stored
 * here before it is acknowledged, and marked finished once its activation is done.
 *
 * Accepts arriving while a write is in flight go together into the next write
 * (./group-commit.ts), as one batch document holding all their entries. Finishing is
 * group-committed the same way and blocks nothing: a batch document gets the ids of its
 * finished entries (`done`), and is deleted once they all are. Batches live in per-day
 * databases (./durable-store.ts), so a past day all finished is dropped whole with its
 * tombstones; what a crash leaves unfinished is claimed and run again (./durable-recovery.ts).
 */
import { randomBytes } from 'node:crypto';
import { LivelyError, describeError } from '../shared/errors.ts';
import { statusOf } from '../store/couch.ts';
import { ensureDayDb, type DayDbs } from '../store/days.ts';
import { GroupCommit } from './group-commit.ts';
import { bulk, bulkJson, entriesLiteral, journalDays, type BulkRow, type DurableEntry, type DurableRef, type JournalBatch, type Owned } from './durable-store.ts';
import { DurableRecovery, type Rerun } from './durable-recovery.ts';
import type { DocumentScope, ServerScope } from '../store/couch.ts';
import type { Logger } from '../shared/logger.ts';

/**
 * A batch not yet all finished is rewritten with its `done` list at most this often: most
 * batches finish within it and cost one insert and one delete; a slow one still keeps its
 * progress, so a crash runs again little more than what was in flight.
 */
const kPartialWriteMs = 1_000;
/** Finishes wait this long for an accept to ride along with before they get a write of their own. */
const kFinishDelayMs = 20;
/**
 * ... and this long while an accept write is in flight: the next accept write carries them, so
 * under a steady stream of durable triggers a batch costs the store one write, not two.
 */
const kFinishRideMs = 250;

/**
 * The entries of one journal batch document, in characters as stored (their JSON, inside the
 * batch's one JSON text, where every quote and backslash is escaped again): the document stays
 * well under what the store accepts (Apache CouchDB 3 refuses a document over 8,000,000 bytes
 * by default), even with every character taking several bytes. Entries accepted meanwhile
 * beyond it go in the next write.
 */
const kMaxBatchChars = 2_000_000;
/**
 * One entry, in characters as stored, in a batch document of its own when it is over
 * kMaxBatchChars: room for a trigger with a body at the default LIVELY_BODY_LIMIT (1 MiB), which
 * an entry holds twice (as the request's body and in its parameters), even when a third of its
 * characters need escaping, and still under CouchDB's limit for JSON that is mostly ASCII.
 */
const kMaxEntryChars = 4_000_000;

export interface DurableJournalOptions {
  server: ServerScope;
  prefix: string;
  /** a stable name of this runtime instance (kept in its data directory). */
  instance: string;
  /** where heartbeats are kept (`_local` documents). */
  heartbeats: DocumentScope<unknown>;
  logger: Logger;
  /** how long an instance's heartbeat stays valid; recovery scans run every third of it. */
  leaseMs?: number;
  /** re-runs allowed in flight at once during recovery. */
  recoveryConcurrency?: number;
  /** how long finishes wait for the next accept write while one is in flight (default kFinishRideMs). */
  finishRideMs?: number;
  /** how often a recovery scan lists every journal day whole (./durable-recovery.ts, default an hour). */
  fullScanMs?: number;
}

/** An accepted entry, and its JSON (made once: for its size, then for the write). */
/** An accepted entry and its JSON as a JSON string literal (escaped again, as its batch stores it). */
interface Accepted { entry: DurableEntry; quoted: string }

export class DurableJournal {
  readonly boot = randomBytes(4).toString('hex');
  readonly owner: string;
  private readonly days: DayDbs;
  private readonly recovery: DurableRecovery;
  private readonly dbs = new Map<string, Promise<void>>();
  private readonly accepts = new Map<string, GroupCommit<Accepted, DurableRef>>();
  /** the batches this boot owns and has not seen all finished, by batch id. */
  private readonly owned = new Map<string, Owned>();
  private flushing: Promise<void> | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private flushFailures = 0;
  private batchSeq = 0;
  /** read by recovery: it stops claiming once the journal closes. */
  closed = false;
  /** `finishWrites`: writes of finishes alone (most ride along with an accept's write). */
  readonly stats = { accepted: 0, finished: 0, recovered: 0, batches: 0, dropped: 0, finishWrites: 0 };

  constructor(private readonly opts: DurableJournalOptions) {
    this.owner = `${opts.instance}/${this.boot}`;
    this.days = journalDays(opts.prefix);
    this.recovery = new DurableRecovery({
      server: opts.server, instance: opts.instance, heartbeats: opts.heartbeats, logger: opts.logger,
      leaseMs: opts.leaseMs ?? 30_000, recoveryConcurrency: opts.recoveryConcurrency, days: this.days, fullScanMs: opts.fullScanMs,
    }, this);
  }

  /**
   * Stores the entry; throws LC_NOT_PERSISTED (503) when the store did not keep it, and
   * LC_BODY_TOO_LARGE (413) for an entry over kMaxEntryChars, which no store write may carry.
   */
  async accept(entry: DurableEntry): Promise<DurableRef> {
    const quoted = JSON.stringify(JSON.stringify(entry));
    const size = quoted.length;
    if (size > kMaxEntryChars) {
      throw new LivelyError('LC_BODY_TOO_LARGE', `a durable event's trigger is stored whole before it is accepted, and this one would take ${size} characters, over the ${kMaxEntryChars} one stored trigger may have`);
    }
    const db = this.days.name(Date.now());
    for (let attempt = 1; ; attempt++) {
      try {
        await this.ensure(db);
        const ref = await this.committer(db).add({ entry, quoted }, size);
        this.stats.accepted++;
        return ref;
      } catch (err) {
        if (statusOf(err) === 404 && attempt === 1) continue; // the day's database was deleted: made again
        throw new LivelyError('LC_NOT_PERSISTED', `the trigger was not stored, so it was not accepted: ${describeError(err)}`);
      }
    }
  }

  /** One write for every entry accepted meanwhile: one batch document. */
  private committer(db: string): GroupCommit<Accepted, DurableRef> {
    let c = this.accepts.get(db);
    if (!c) {
      c = new GroupCommit<Accepted, DurableRef>(async (accepted) => {
        const now = Date.now();
        const head = { _id: `${now.toString(36)}-${this.boot}-${(this.batchSeq++).toString(36)}`, type: 'durable' as const, owner: this.owner, accepted: now };
        const literal = entriesLiteral(accepted.map((a) => a.quoted));
        const doc: JournalBatch = { ...head };
        // The finishes due in this database go in the same write.
        const carried = this.takeDue(now, db).byDb.get(db) ?? [];
        const finishing = carried.map((o) => this.finishDoc(o));
        let rows: Map<string | undefined, BulkRow>;
        try {
          const json = `{"docs":[${JSON.stringify(head).slice(0, -1)},"entriesJson":${literal}}${finishing.map((f) => `,${JSON.stringify(f.doc)}`).join('')}]}`;
          rows = await bulkJson(this.opts.server, db, json);
        } catch (err) {
          this.applyFinish(carried, finishing, err);
          if (statusOf(err) === 404) this.dbs.delete(db); // deleted under us: made again on the next accept
          throw err;
        }
        this.applyFinish(carried, finishing, rows);
        const row = rows.get(doc._id);
        if (!row || row.error || !row.rev) throw new Error(row ? `${row.error ?? 'no revision'}${row.reason ? ` (${row.reason})` : ''}` : 'the store gave no result');
        doc._rev = row.rev;
        this.owned.set(doc._id, { db, doc, literal, count: accepted.length, done: new Set(), dirty: false, writtenAt: now });
        this.stats.batches++;
        return accepted.map((a) => ({ db, batch: doc._id, activation: a.entry.activation }));
      }, 2_000, kMaxBatchChars);
      this.accepts.set(db, c);
    }
    return c;
  }

  /** Marks the entry finished, group-committed with the others; never throws. */
  finish(ref: DurableRef): void {
    const owned = this.owned.get(ref.batch);
    if (!owned) return; // claimed by another instance meanwhile: it finishes it
    owned.done.add(ref.activation);
    owned.dirty = true;
    this.stats.finished++;
    this.scheduleFlush(this.finishDelay());
  }

  private finishDelay(): number {
    for (const c of this.accepts.values()) if (c.busy) return this.opts.finishRideMs ?? kFinishRideMs;
    return kFinishDelayMs;
  }

  private scheduleFlush(ms: number): void {
    if (this.flushing || this.flushTimer) return;
    if (ms > 0) {
      this.flushTimer = setTimeout(() => { this.flushTimer = undefined; this.scheduleFlush(0); }, ms);
      this.flushTimer.unref();
      return;
    }
    this.flushing = this.flush().then((retryIn) => {
      this.flushing = undefined;
      if (this.closed) return;
      if (retryIn !== undefined) this.scheduleFlush(retryIn);
      else if (this.hasDirty()) this.scheduleFlush(0);
    });
  }

  private hasDirty(): boolean {
    for (const o of this.owned.values()) if (o.dirty && !o.writing) return true;
    return false;
  }

  /** The batches to write now, by database (only `db`'s when given), marked as being written. */
  private takeDue(now: number, db?: string): { byDb: Map<string, Owned[]>; nextPartial?: number } {
    const byDb = new Map<string, Owned[]>();
    let nextPartial: number | undefined;
    for (const o of this.owned.values()) {
      if (!o.dirty || o.writing || (db !== undefined && o.db !== db)) continue;
      const due = o.writtenAt + kPartialWriteMs - now;
      if (o.done.size < o.count && due > 0 && !this.closed) {
        nextPartial = Math.min(nextPartial ?? due, due);
        continue;
      }
      o.dirty = false;
      o.writing = true;
      (byDb.get(o.db) ?? byDb.set(o.db, []).get(o.db)!).push(o);
    }
    return { byDb, nextPartial };
  }

  /** A batch all finished is deleted; one still running is rewritten with its `done` list. */
  private finishDoc(o: Owned): { doc: object; deleting: boolean } {
    const deleting = o.done.size >= o.count;
    if (!deleting && o.literal !== undefined) { o.doc.entriesJson = JSON.parse(o.literal) as string; o.literal = undefined; }
    return { doc: deleting ? { _id: o.doc._id, _rev: o.doc._rev, _deleted: true } : { ...o.doc, done: [...o.done] }, deleting };
  }

  /** What the store answered for finish writes (rows), or the error the write failed with. Whether all were taken. */
  private applyFinish(batches: Owned[], docs: Array<{ deleting: boolean }>, result: Map<string | undefined, BulkRow> | unknown): boolean {
    let taken = true;
    batches.forEach((o, i) => {
      o.writing = false;
      if (!(result instanceof Map)) {
        if (statusOf(result) === 404) { this.owned.delete(o.doc._id); return; } // its day was dropped
        o.dirty = true;
        taken = false;
        return;
      }
      const row = (result as Map<string | undefined, BulkRow>).get(o.doc._id);
      if (row?.rev && !row.error) {
        if (docs[i]!.deleting) this.owned.delete(o.doc._id);
        else { o.doc._rev = row.rev; o.writtenAt = Date.now(); }
      } else if (row?.error === 'conflict') {
        // Claimed by another instance (this one looked dead): it runs and finishes them.
        this.owned.delete(o.doc._id);
      } else {
        o.dirty = true;
        taken = false;
        this.opts.logger.debug('durable finish refused', { batch: o.doc._id, error: row?.error });
      }
    });
    if (batches.length > 0 && !this.closed && this.hasDirty()) this.scheduleFlush(this.finishDelay());
    return taken;
  }

  /**
   * Writes every batch with newly finished entries: deleted when all are finished, else
   * updated with its `done` list. Batches changed while a write is in flight go in the next
   * round. Resolves with when to come back (ms): for a batch whose partial write is not due
   * yet, or when the store did not take a write.
   */
  private async flush(): Promise<number | undefined> {
    for (;;) {
      const { byDb, nextPartial } = this.takeDue(Date.now());
      if (byDb.size === 0) {
        this.flushFailures = 0;
        return nextPartial;
      }
      let refused = false;
      for (const [db, batches] of byDb) {
        const docs = batches.map((o) => this.finishDoc(o));
        let result: Map<string | undefined, BulkRow> | unknown;
        try {
          this.stats.finishWrites++;
          result = await bulk(this.opts.server, db, docs.map((d) => d.doc));
        } catch (err) {
          result = err;
          this.opts.logger.debug('durable finish write deferred', { error: describeError(err) });
        }
        if (!this.applyFinish(batches, docs, result)) refused = true;
      }
      if (refused) {
        // Kept in memory and in the journal: written when the store takes it again (or run
        // again after a restart: at least once).
        this.flushFailures++;
        return Math.min(100 * 2 ** this.flushFailures, 10_000);
      }
    }
  }

  /** Heartbeat, then recovery now and every third of the lease. `rerun` runs a claimed entry again. */
  start(rerun: Rerun): Promise<void> {
    return this.recovery.start(rerun);
  }

  /** Claims orphaned batches and runs their unfinished entries again; resolves with how many. */
  recover(rerun: Rerun): Promise<number> {
    return this.recovery.recover(rerun);
  }

  /** A claimed batch: this boot finishes it from now on. */
  adopt(id: string, owned: Owned): void {
    this.owned.set(id, owned);
  }

  /** A finished day's database was dropped (`wasDropped`: by this call). */
  dropped(db: string, wasDropped: boolean): void {
    this.dbs.delete(db);
    this.accepts.delete(db);
    if (wasDropped) this.stats.dropped++;
  }

  private ensure(db: string): Promise<void> {
    let p = this.dbs.get(db);
    if (!p) {
      p = ensureDayDb(this.opts.server, db);
      this.dbs.set(db, p);
      p.catch(() => this.dbs.delete(db));
    }
    return p;
  }

  /** Writes made by the accept committers (specs check that accepts share them). */
  acceptWrites(): number {
    let n = 0;
    for (const c of this.accepts.values()) n += c.writes;
    return n;
  }

  /**
   * Stops heartbeats and scans, and writes the finishes not yet written (once; a failure is
   * not retried). An unfinished entry runs again at this instance's next start, or on another
   * instance once the lease is over.
   */
  async close(): Promise<void> {
    this.closed = true;
    await this.recovery.stop();
    if (this.flushTimer) { clearTimeout(this.flushTimer); this.flushTimer = undefined; }
    await this.flushing;
    if (this.hasDirty()) await this.flush();
  }
}
