/**
 * The durable-event journal: an accepted HTTP trigger of a `"durable": true` event is stored
 * here before it is acknowledged, and marked finished once its activation is done.
 *
 * - Group commit: accepts arriving while a write is in flight go together into the next
 *   write (GroupCommit), as ONE batch document holding all their entries, so durability
 *   costs a share of one small write, not a document and a round trip per request.
 *   Finishing is group-committed the same way and blocks nothing: a batch document gets the
 *   ids of its finished entries (`done`), and is deleted once they all are.
 * - Per-day databases `<prefix>durable_<yyyymmdd>` (UTC): a past day whose batches are all
 *   deleted is dropped whole, so their tombstones go with it instead of piling up forever.
 * - Recovery: each batch names its owner `<instance>/<boot>` (instance: a name kept in the
 *   data directory; boot: this process). Every instance keeps a heartbeat document. A batch
 *   is orphaned when its owner is an earlier boot of this instance, or an instance whose
 *   heartbeat is missing, from another boot, or older than the lease. Orphans are claimed
 *   through the state database (a `durable-claim-<day>-<batch>` document written with the
 *   `_rev` read: the 409 loser skips them; that database is q=1, n=1, so on a cluster too only
 *   one instance wins), then marked in the batch, and their unfinished entries run again, on
 *   start and then every lease period. The claim document, once there, names the owner.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { DocumentScope, ServerScope } from '../store/couch.ts';
import { LivelyError, describeError } from '../shared/errors.ts';
import type { HttpRequestPart } from '../shared/message.ts';
import type { Logger } from '../shared/logger.ts';
import { putDoc, sendJson, statusOf } from '../store/couch.ts';
import { DayDbs, dropDayDb, ensureDayDb, kDayMs } from '../store/days.ts';

/** What a durable activation needs to run again. */
export interface DurableEntry {
  activation: string;
  method: string;
  path: string;
  params: Record<string, unknown>;
  /** the request without its credentials. */
  request?: HttpRequestPart;
  /** the events it fired, with what their triggers bound. */
  events: Array<{ id: string; bindings: Record<string, unknown> }>;
}

/** Where an entry is stored: its day's database, its batch document, its activation. */
export interface DurableRef {
  db: string;
  batch: string;
  activation: string;
}

/** One group-committed write of accepted entries. */
export interface JournalBatch {
  _id: string;
  _rev?: string;
  type: 'durable';
  owner: string;
  accepted: number;
  claimed?: number;
  entries: DurableEntry[];
  /** activations of `entries` that finished. */
  done?: string[];
}

/** A batch this boot owns, as it stands in the store (`rev`) and in memory (`done`). */
interface Owned {
  db: string;
  doc: JournalBatch;
  done: Set<string>;
  /** `done` has grown since the last write. */
  dirty: boolean;
  /** when the batch was last written (ms since the epoch). */
  writtenAt: number;
  /** a write of it is under way (a second one would conflict with it). */
  writing?: boolean;
}

/**
 * A batch not yet all finished is rewritten with its `done` list at most this often: most
 * batches finish within it and cost one insert and one delete; a slow one still keeps its
 * progress, so a crash runs again little more than what was in flight.
 */
const kPartialWriteMs = 1_000;
/** Finishes wait this long for an accept to ride along with before they get a write of their own. */
const kFinishDelayMs = 20;

interface BulkRow { id?: string; rev?: string; error?: string; reason?: string }

/**
 * Batches concurrent writes: the first item starts a write at once; items added while it is
 * in flight wait and go together in the next one (at most `maxBatch` per write).
 */
/**
 * The entries of one journal batch document, in characters of their JSON: the document stays
 * well under what the store accepts (Apache CouchDB 3 refuses a document over 8,000,000 bytes
 * by default), even with every character taking several bytes. Entries accepted meanwhile
 * beyond it go in the next write.
 */
const kMaxBatchChars = 2_000_000;
/**
 * One entry, in a batch document of its own when it is over kMaxBatchChars: room for a trigger
 * with a body at the default LIVELY_BODY_LIMIT (1 MiB), which an entry holds twice (as the
 * request's body and in its parameters), and still under CouchDB's limit for JSON that is
 * mostly ASCII.
 */
const kMaxEntryChars = 3_000_000;

export class GroupCommit<T, R> {
  private queue: Array<{ item: T; size: number; resolve: (r: R) => void; reject: (e: unknown) => void }> = [];
  private writing = false;
  /** writes made, for specs and status. */
  writes = 0;

  /**
   * A write takes at most `maxBatch` items, and items of at most `maxSize` in all (by the sizes
   * given to add(); at least one item, whatever its size).
   */
  constructor(private readonly write: (items: T[]) => Promise<R[]>, private readonly maxBatch = 2_000, private readonly maxSize = Infinity) {}

  add(item: T, size = 0): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, size, resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  /** How many of the queue's first items one write takes. */
  private takes(): number {
    let n = 0;
    let size = 0;
    while (n < this.queue.length && n < this.maxBatch && (n === 0 || size + this.queue[n]!.size <= this.maxSize)) size += this.queue[n++]!.size;
    return n;
  }

  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.takes());
        this.writes++;
        try {
          const results = await this.write(batch.map((b) => b.item));
          batch.forEach((b, i) => b.resolve(results[i]!));
        } catch (err) {
          for (const b of batch) b.reject(err);
        }
      }
    } finally {
      this.writing = false;
    }
  }
}

export interface DurableJournalOptions {
  server: ServerScope;
  prefix: string;
  /** a stable name of this runtime instance (kept in its data directory). */
  instance: string;
  /** where heartbeats are kept (`_local` documents). */
  heartbeats: DocumentScope<unknown>;
  logger: Logger;
  /** how long an instance's heartbeat stays valid; also the period of recovery scans. */
  leaseMs?: number;
  /** re-runs allowed in flight at once during recovery. */
  recoveryConcurrency?: number;
}

/** Runs an entry again; the promise settles when its activation is done. Undefined: nothing to run. */
export type Rerun = (entry: DurableEntry, ref: DurableRef) => { done: Promise<unknown> } | undefined;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** `_bulk_docs` results by document id (a write never holds one id twice). */
function byId(rows: BulkRow[]): Map<string | undefined, BulkRow> {
  return new Map(rows.map((r) => [r.id, r]));
}

/** This instance's name: kept in `<dataDir>/instance`, made on first use. */
export function instanceName(dataDir: string): string {
  const file = path.join(dataDir, 'instance');
  try {
    const name = readFileSync(file, 'utf8').trim();
    if (/^[a-z0-9]{8,32}$/.test(name)) return name;
  } catch { /* made below */ }
  const name = randomBytes(6).toString('hex');
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, name + '\n');
  return name;
}

/** The journal's day databases, `<prefix>durable_<yyyymmdd>`. */
const journalDays = (prefix: string) => new DayDbs(`${prefix}durable_`);

/** `<prefix>durable_<yyyymmdd>` for the UTC day of `at`. */
export function journalDbName(prefix: string, at: number): string {
  return journalDays(prefix).name(at);
}

/** Stringified here, once: nano's own stringify walks every key with a replacer. */
async function bulk(server: ServerScope, db: string, docs: unknown[]): Promise<Map<string | undefined, BulkRow>> {
  return byId(await sendJson<BulkRow[]>(server, 'POST', { db, path: '_bulk_docs' }, JSON.stringify({ docs })));
}

export class DurableJournal {
  readonly boot = randomBytes(4).toString('hex');
  readonly owner: string;
  private readonly days: DayDbs;
  private readonly leaseMs: number;
  private readonly dbs = new Map<string, Promise<void>>();
  private readonly accepts = new Map<string, GroupCommit<DurableEntry, DurableRef>>();
  /** the batches this boot owns and has not seen all finished, by batch id. */
  private readonly owned = new Map<string, Owned>();
  private flushing: Promise<void> | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private flushFailures = 0;
  private batchSeq = 0;
  private timer: NodeJS.Timeout | undefined;
  private recovering: Promise<number> | undefined;
  private heartbeatRev: string | undefined;
  private closed = false;
  readonly stats = { accepted: 0, finished: 0, recovered: 0, batches: 0, dropped: 0 };

  constructor(private readonly opts: DurableJournalOptions) {
    this.owner = `${opts.instance}/${this.boot}`;
    this.days = journalDays(opts.prefix);
    this.leaseMs = opts.leaseMs ?? 30_000;
  }

  /**
   * Stores the entry; throws LC_NOT_PERSISTED (503) when the store did not keep it, and
   * LC_BODY_TOO_LARGE (413) for an entry over kMaxEntryChars, which no store write may carry.
   */
  async accept(entry: DurableEntry): Promise<DurableRef> {
    const size = JSON.stringify(entry).length;
    if (size > kMaxEntryChars) {
      throw new LivelyError('LC_BODY_TOO_LARGE', `a durable event's trigger is stored whole before it is accepted, and this one would take ${size} characters, over the ${kMaxEntryChars} one stored trigger may have`);
    }
    const db = this.days.name(Date.now());
    for (let attempt = 1; ; attempt++) {
      try {
        await this.ensure(db);
        const ref = await this.committer(db).add(entry, size);
        this.stats.accepted++;
        return ref;
      } catch (err) {
        if (statusOf(err) === 404 && attempt === 1) continue; // the day's database was deleted: made again
        throw new LivelyError('LC_NOT_PERSISTED', `the trigger was not stored, so it was not accepted: ${describeError(err)}`);
      }
    }
  }

  /** One write for every entry accepted meanwhile: one batch document. */
  private committer(db: string): GroupCommit<DurableEntry, DurableRef> {
    let c = this.accepts.get(db);
    if (!c) {
      c = new GroupCommit<DurableEntry, DurableRef>(async (entries) => {
        const now = Date.now();
        const doc: JournalBatch = { _id: `${now.toString(36)}-${this.boot}-${(this.batchSeq++).toString(36)}`, type: 'durable', owner: this.owner, accepted: now, entries };
        // The finishes due in this database go in the same write.
        const carried = this.takeDue(now, db).byDb.get(db) ?? [];
        const finishing = carried.map((o) => this.finishDoc(o));
        let rows: Map<string | undefined, BulkRow>;
        try {
          rows = await bulk(this.opts.server, db, [doc, ...finishing.map((f) => f.doc)]);
        } catch (err) {
          this.applyFinish(carried, finishing, err);
          if (statusOf(err) === 404) this.dbs.delete(db); // deleted under us: made again on the next accept
          throw err;
        }
        this.applyFinish(carried, finishing, rows);
        const row = rows.get(doc._id);
        if (!row || row.error || !row.rev) throw new Error(row ? `${row.error ?? 'no revision'}${row.reason ? ` (${row.reason})` : ''}` : 'the store gave no result');
        doc._rev = row.rev;
        this.owned.set(doc._id, { db, doc, done: new Set(), dirty: false, writtenAt: now });
        this.stats.batches++;
        return entries.map((e) => ({ db, batch: doc._id, activation: e.activation }));
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
    this.scheduleFlush(kFinishDelayMs);
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
      if (o.done.size < o.doc.entries.length && due > 0 && !this.closed) {
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
    const deleting = o.done.size >= o.doc.entries.length;
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
    if (batches.length > 0 && !this.closed && this.hasDirty()) this.scheduleFlush(kFinishDelayMs);
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

  /** Heartbeat, then recovery now and every lease period. `rerun` runs a claimed entry again. */
  async start(rerun: Rerun): Promise<void> {
    await this.heartbeat().catch((err) => this.opts.logger.warn('durable heartbeat failed', { error: describeError(err) }));
    const tick = async () => {
      await this.heartbeat().catch((err) => this.opts.logger.warn('durable heartbeat failed', { error: describeError(err) }));
      await this.recover(rerun).catch((err) => this.opts.logger.warn('durable recovery failed', { error: describeError(err) }));
    };
    this.timer = setInterval(() => void tick(), Math.max(1_000, Math.floor(this.leaseMs / 3)));
    this.timer.unref();
    void this.recover(rerun).catch((err) => this.opts.logger.warn('durable recovery failed', { error: describeError(err) }));
  }

  /**
   * Claims the orphaned batches of every journal day and runs their unfinished entries again;
   * drops past days with nothing left. Resolves with the number of entries claimed. One scan
   * at a time; it does not wait for the re-runs to finish.
   */
  recover(rerun: Rerun): Promise<number> {
    this.recovering ??= this.scan(rerun).finally(() => { this.recovering = undefined; });
    return this.recovering;
  }

  private async scan(rerun: Rerun): Promise<number> {
    const { server, logger } = this.opts;
    const days = (await this.days.list(server)).map((d) => d.name).reverse(); // oldest first
    const heartbeats = new Map<string, { boot?: string; at?: number } | null>();
    let claimed = 0;
    const running = new Set<Promise<unknown>>();
    const limit = this.opts.recoveryConcurrency ?? 256;
    for (const name of days) {
      const db = server.use<JournalBatch>(name);
      let startkey: string | undefined;
      for (;;) {
        if (this.closed) return claimed;
        let page;
        try {
          // From just past the last id seen (not `skip: 1`: that batch may be deleted by now).
          page = await db.list({ include_docs: true, limit: 100, ...(startkey !== undefined ? { startkey } : {}) });
        } catch (err) {
          if (statusOf(err) === 404) break; // dropped meanwhile
          throw err;
        }
        if (page.rows.length === 0) break;
        startkey = page.rows[page.rows.length - 1]!.id + '\u0000';
        const orphans: JournalBatch[] = [];
        for (const row of page.rows) {
          const doc = row.doc as JournalBatch | undefined;
          if (doc?.type !== 'durable' || !Array.isArray(doc.entries)) continue;
          if (await this.orphaned(doc.owner, heartbeats) && await this.arbitrate(name, doc, heartbeats)) orphans.push(doc);
        }
        if (orphans.length === 0) continue;
        const now = Date.now();
        const rows = await bulk(server, name, orphans.map((d) => ({ ...d, owner: this.owner, claimed: now })));
        for (const doc of orphans) {
          const r = rows.get(doc._id);
          if (!r || r.error || !r.rev) continue; // another instance claimed it first (409)
          const mine: JournalBatch = { ...doc, _rev: r.rev, owner: this.owner, claimed: now };
          const owned: Owned = { db: name, doc: mine, done: new Set(doc.done ?? []), dirty: false, writtenAt: now };
          this.owned.set(doc._id, owned);
          for (const entry of doc.entries) {
            if (owned.done.has(entry.activation)) continue;
            claimed++;
            this.stats.recovered++;
            while (running.size >= limit) await Promise.race(running);
            const p = this.runClaimed(entry, { db: name, batch: doc._id, activation: entry.activation }, rerun).finally(() => running.delete(p));
            running.add(p);
          }
        }
      }
      await this.dropIfDone(name);
    }
    if (claimed > 0) logger.info('durable activations claimed to run again', { count: claimed });
    return claimed;
  }

  /** Runs one claimed entry, waiting while the gate is full; finishes it when nothing is left to run. */
  private async runClaimed(entry: DurableEntry, ref: DurableRef, rerun: Rerun): Promise<void> {
    for (;;) {
      if (this.closed) return;
      try {
        const fired = rerun(entry, ref);
        if (!fired) {
          this.opts.logger.warn('durable activation dropped: none of its events is enabled', { activation: entry.activation, events: entry.events.map((e) => e.id) });
          this.finish(ref);
          return;
        }
        await fired.done;
        return;
      } catch (err) {
        if ((err as LivelyError).code !== 'LC_QUEUE_FULL') {
          this.opts.logger.warn('durable activation not run again', { activation: entry.activation, error: describeError(err) });
          return; // stays in the journal, claimed by this boot: the next start tries again
        }
        await sleep(100);
      }
    }
  }

  /**
   * Claims an orphaned batch in the state database, where writes serialise: true when this
   * instance won it. A claim by a live instance since the batch was written stands.
   */
  private async arbitrate(db: string, batch: JournalBatch, heartbeats: Map<string, { boot?: string; at?: number } | null>): Promise<boolean> {
    const id = `durable-claim-${db}-${batch._id}`;
    let claim: { _rev?: string; owner?: string } | undefined;
    try {
      claim = (await this.opts.heartbeats.get(id)) as { _rev?: string; owner?: string };
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
    if (claim?.owner && claim.owner !== batch.owner) {
      if (claim.owner === this.owner) return false; // ours already, being run
      if (!(await this.orphaned(claim.owner, heartbeats))) return false;
    }
    try {
      await putDoc(this.opts.heartbeats, { _id: id, ...(claim?._rev ? { _rev: claim._rev } : {}), type: 'durable-claim', db, batch: batch._id, owner: this.owner, at: Date.now() });
      return true;
    } catch (err) {
      if (statusOf(err) === 409) return false; // another instance claimed it first
      throw err;
    }
  }

  private async orphaned(owner: string, heartbeats: Map<string, { boot?: string; at?: number } | null>): Promise<boolean> {
    const slash = owner.lastIndexOf('/');
    const instance = owner.slice(0, slash);
    const boot = owner.slice(slash + 1);
    if (boot === this.boot) return false; // ours, running now
    if (instance === this.opts.instance) return true; // an earlier boot of this instance
    if (!heartbeats.has(instance)) heartbeats.set(instance, await this.readHeartbeat(instance));
    const hb = heartbeats.get(instance);
    return !hb || hb.boot !== boot || typeof hb.at !== 'number' || Date.now() - hb.at > this.leaseMs;
  }

  private heartbeatId(instance: string): string {
    return `_local/lively-durable-${instance}`;
  }

  private async readHeartbeat(instance: string): Promise<{ boot?: string; at?: number; _rev?: string } | null> {
    try {
      return (await this.opts.heartbeats.get(this.heartbeatId(instance))) as { boot?: string; at?: number; _rev?: string };
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw err;
    }
  }

  private async heartbeat(): Promise<void> {
    const id = this.heartbeatId(this.opts.instance);
    for (let attempt = 0; attempt < 3; attempt++) {
      const doc: Record<string, unknown> = { _id: id, boot: this.boot, at: Date.now() };
      if (this.heartbeatRev) doc._rev = this.heartbeatRev;
      try {
        this.heartbeatRev = (await this.opts.heartbeats.insert(doc)).rev;
        return;
      } catch (err) {
        if (statusOf(err) !== 409) throw err;
        this.heartbeatRev = (await this.readHeartbeat(this.opts.instance))?._rev;
      }
    }
  }

  /** A day before yesterday (UTC) with no batch left is dropped, tombstones and all. */
  private async dropIfDone(name: string): Promise<void> {
    const day = this.days.parse(name)!.start;
    if (day >= Date.now() - 2 * kDayMs) return;
    try {
      const info = await this.opts.server.db.get(name);
      if (info.doc_count !== 0) return;
      const dropped = await dropDayDb(this.opts.server, name);
      await this.dropClaims(name);
      this.dbs.delete(name);
      this.accepts.delete(name);
      if (dropped) this.stats.dropped++;
    } catch (err) {
      if (statusOf(err) !== 404) this.opts.logger.warn('dropping a finished journal day failed', { db: name, error: describeError(err) });
    }
  }

  /** The claim documents of a dropped day: nothing is left for them to arbitrate. */
  private async dropClaims(db: string): Promise<void> {
    const prefix = `durable-claim-${db}-`;
    const page = await this.opts.heartbeats.list({ startkey: prefix, endkey: `${prefix}\ufff0` });
    const docs = page.rows.map((r) => ({ _id: r.id, _rev: (r.value as { rev: string }).rev, _deleted: true }));
    if (docs.length > 0) await this.opts.heartbeats.bulk({ docs });
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
    if (this.timer) clearInterval(this.timer);
    if (this.flushTimer) { clearTimeout(this.flushTimer); this.flushTimer = undefined; }
    await this.flushing;
    if (this.hasDirty()) await this.flush();
  }
}
