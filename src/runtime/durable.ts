/**
 * The durable-event journal: an accepted HTTP trigger of a `"durable": true` event is a
 * document here before it is acknowledged, and is deleted once its activation finished.
 *
 * - Group commit: accepts arriving while a write is in flight share the next `_bulk_docs`
 *   (GroupCommit), so durability costs a share of one write, not a round trip per request.
 *   Finishing is group-committed the same way and blocks nothing.
 * - Per-day databases `<prefix>durable_<yyyymmdd>` (UTC): finishing deletes the entry, and a
 *   past day whose entries are all finished is dropped whole, so the tombstones of finished
 *   entries go with it instead of piling up in one database forever.
 * - Recovery: each entry names its owner `<instance>/<boot>` (instance: a name kept in the
 *   data directory; boot: this process). Every instance keeps a heartbeat document. An entry
 *   is orphaned when its owner is an earlier boot of this instance, or an instance whose
 *   heartbeat is missing, from another boot, or older than the lease. Orphans are claimed
 *   by updating them with their `_rev` (the 409 loser skips them) and run again, on start
 *   and then every lease period.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { DocumentScope, ServerScope } from 'nano';
import { LivelyError, describeError } from '../shared/errors.ts';
import type { HttpRequestPart } from '../shared/message.ts';
import type { Logger } from '../shared/log.ts';
import { ensureDb, statusOf } from '../store/couch.ts';

/** What a durable activation needs to run again. */
export interface DurableEntry {
  activation: string;
  method: string;
  path: string;
  params: Record<string, unknown>;
  /** the request without its credentials. */
  request?: HttpRequestPart;
  /** the events it fired, with what their triggers bound. */
  events: Array<{ id: string; bindings: Record<string, string> }>;
}

/** Where an entry is stored, at which revision. */
export interface DurableRef {
  db: string;
  id: string;
  rev: string;
}

interface JournalDoc extends DurableEntry {
  _id: string;
  _rev?: string;
  type: 'durable';
  owner: string;
  accepted: number;
  claimed?: number;
}

interface BulkRow { id?: string; rev?: string; error?: string; reason?: string }

/**
 * Batches concurrent writes: the first item starts a write at once; items added while it is
 * in flight wait and go together in the next one (at most `maxBatch` per write).
 */
export class GroupCommit<T, R> {
  private queue: Array<{ item: T; resolve: (r: R) => void; reject: (e: unknown) => void }> = [];
  private writing = false;
  /** writes made, for specs and status. */
  writes = 0;

  constructor(private readonly write: (items: T[]) => Promise<R[]>, private readonly maxBatch = 2_000) {}

  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
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

const DAY_MS = 86_400_000;

/** `_bulk_docs` results by document id (a batch never holds one id twice). */
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
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** `<prefix>durable_<yyyymmdd>` for the UTC day of `at`. */
export function journalDbName(prefix: string, at: number): string {
  return `${prefix}durable_${new Date(at).toISOString().slice(0, 10).replace(/-/g, '')}`;
}

/** ms since the epoch of the start of the day a journal database holds, or undefined. */
function dayOf(prefix: string, db: string): number | undefined {
  const m = new RegExp(`^${prefix.replace(/[$()+/]/g, '\\$&')}durable_(\\d{4})(\\d{2})(\\d{2})$`).exec(db);
  return m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : undefined;
}

export class DurableJournal {
  readonly boot = randomBytes(4).toString('hex');
  readonly owner: string;
  private readonly leaseMs: number;
  private readonly dbs = new Map<string, Promise<void>>();
  private readonly accepts = new Map<string, GroupCommit<JournalDoc, BulkRow>>();
  private readonly finishes = new Map<string, GroupCommit<{ _id: string; _rev: string; _deleted: true }, BulkRow>>();
  private timer: NodeJS.Timeout | undefined;
  private recovering: Promise<number> | undefined;
  private heartbeatRev: string | undefined;
  private closed = false;
  private readonly finishing = new Set<Promise<void>>();
  readonly stats = { accepted: 0, finished: 0, recovered: 0, finishFailed: 0, dropped: 0 };

  constructor(private readonly opts: DurableJournalOptions) {
    this.owner = `${opts.instance}/${this.boot}`;
    this.leaseMs = opts.leaseMs ?? 30_000;
  }

  /** Stores the entry; throws LC_NOT_PERSISTED (503) when the store did not keep it. */
  async accept(entry: DurableEntry): Promise<DurableRef> {
    const now = Date.now();
    const db = journalDbName(this.opts.prefix, now);
    let row: BulkRow;
    try {
      await this.ensure(db);
      row = await this.committer(this.accepts, db).add({ ...entry, _id: entry.activation, type: 'durable', owner: this.owner, accepted: now });
    } catch (err) {
      throw new LivelyError('LC_NOT_PERSISTED', `the trigger was not stored, so it was not accepted: ${describeError(err)}`);
    }
    if (row.error || !row.rev) {
      throw new LivelyError('LC_NOT_PERSISTED', `the trigger was not stored, so it was not accepted: ${row.error ?? 'no revision'}${row.reason ? ` (${row.reason})` : ''}`);
    }
    this.stats.accepted++;
    return { db, id: entry.activation, rev: row.rev };
  }

  /** Marks the entry finished (deletes it), group-committed; never throws. */
  finish(ref: DurableRef): void {
    const p = this.finishNow(ref).finally(() => this.finishing.delete(p));
    this.finishing.add(p);
  }

  private async finishNow(ref: DurableRef): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const row = await this.committer(this.finishes, ref.db).add({ _id: ref.id, _rev: ref.rev, _deleted: true });
        if (row.error) this.opts.logger.debug('durable finish answered with an error', { activation: ref.id, error: row.error });
        // A conflict: another instance claimed it meanwhile and will finish it.
        if (!row.error || row.error === 'conflict' || row.error === 'not_found') { this.stats.finished++; return; }
        throw new Error(`${row.error}${row.reason ? ` (${row.reason})` : ''}`);
      } catch (err) {
        if (statusOf(err) === 404) { this.stats.finished++; return; } // its day was dropped
        if (attempt >= 8 || this.closed) {
          // Left in the journal: the next start runs it again (at least once, never lost).
          this.stats.finishFailed++;
          this.opts.logger.warn('durable activation not marked finished', { activation: ref.id, error: describeError(err) });
          return;
        }
        await sleep(Math.min(250 * 2 ** attempt, 10_000));
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
   * Claims the orphaned entries of every journal day and runs them again; drops past days
   * with no entry left. Resolves with the number claimed. One scan at a time.
   */
  recover(rerun: Rerun): Promise<number> {
    this.recovering ??= this.scan(rerun).finally(() => { this.recovering = undefined; });
    return this.recovering;
  }

  private async scan(rerun: Rerun): Promise<number> {
    const { server, prefix, logger } = this.opts;
    const days = (await server.db.list()).filter((db) => dayOf(prefix, db) !== undefined).sort();
    const heartbeats = new Map<string, { boot?: string; at?: number } | null>();
    let claimed = 0;
    const running = new Set<Promise<unknown>>();
    const limit = this.opts.recoveryConcurrency ?? 256;
    for (const name of days) {
      const db = server.use<JournalDoc>(name);
      let startkey: string | undefined;
      for (;;) {
        if (this.closed) return claimed;
        let page;
        try {
          // From just after the last id seen (not `skip: 1`: that id may be deleted by now).
          page = await db.list({ include_docs: true, limit: 500, ...(startkey !== undefined ? { startkey } : {}) } as never);
        } catch (err) {
          if (statusOf(err) === 404) break; // dropped meanwhile
          throw err;
        }
        if (page.rows.length === 0) break;
        startkey = page.rows[page.rows.length - 1]!.id + '\u0000';
        const orphans: JournalDoc[] = [];
        for (const row of page.rows) {
          const doc = row.doc as JournalDoc | undefined;
          if (doc?.type === 'durable' && await this.orphaned(doc.owner, heartbeats)) orphans.push(doc);
        }
        if (orphans.length === 0) continue;
        const now = Date.now();
        const res = byId((await db.bulk({ docs: orphans.map((d) => ({ ...d, owner: this.owner, claimed: now })) })) as BulkRow[]);
        for (let i = 0; i < orphans.length; i++) {
          const r = res.get(orphans[i]!._id);
          if (!r || r.error || !r.rev) continue; // another instance claimed it first (409)
          claimed++;
          this.stats.recovered++;
          const doc = orphans[i]!;
          const ref: DurableRef = { db: name, id: doc._id, rev: r.rev };
          while (running.size >= limit) await Promise.race(running);
          const p = this.runClaimed(doc, ref, rerun).finally(() => running.delete(p));
          running.add(p);
        }
      }
      await this.dropIfDone(name);
    }
    if (claimed > 0) logger.info('durable activations claimed to run again', { count: claimed });
    return claimed;
  }

  /** Runs one claimed entry, waiting while the gate is full; finishes it when nothing is left to run. */
  private async runClaimed(doc: JournalDoc, ref: DurableRef, rerun: Rerun): Promise<void> {
    const { _id: _i, _rev: _r, type: _t, owner: _o, accepted: _a, claimed: _c, ...entry } = doc;
    for (;;) {
      if (this.closed) return;
      try {
        const fired = rerun(entry, ref);
        if (!fired) {
          this.opts.logger.warn('durable activation dropped: none of its events is enabled', { activation: doc._id, events: doc.events.map((e) => e.id) });
          this.finish(ref);
          return;
        }
        await fired.done;
        return;
      } catch (err) {
        if ((err as LivelyError).code !== 'LC_QUEUE_FULL') {
          this.opts.logger.warn('durable activation not run again', { activation: doc._id, error: describeError(err) });
          return; // stays in the journal, claimed by this boot: the next start tries again
        }
        await sleep(100);
      }
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

  private async readHeartbeat(instance: string): Promise<{ boot?: string; at?: number } | null> {
    try {
      return (await this.opts.heartbeats.get(this.heartbeatId(instance))) as { boot?: string; at?: number };
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
        this.heartbeatRev = (await this.opts.heartbeats.insert(doc as never)).rev;
        return;
      } catch (err) {
        if (statusOf(err) !== 409) throw err;
        this.heartbeatRev = ((await this.readHeartbeat(this.opts.instance)) as { _rev?: string } | null)?._rev;
      }
    }
  }

  /** A day before yesterday (UTC) with no entry left is dropped, tombstones and all. */
  private async dropIfDone(name: string): Promise<void> {
    const day = dayOf(this.opts.prefix, name)!;
    if (day >= Date.now() - 2 * DAY_MS) return;
    try {
      const info = await this.opts.server.db.get(name);
      if (info.doc_count !== 0) return;
      await this.opts.server.db.destroy(name);
      this.dbs.delete(name);
      this.accepts.delete(name);
      this.finishes.delete(name);
      this.stats.dropped++;
    } catch (err) {
      if (statusOf(err) !== 404) this.opts.logger.warn('dropping a finished journal day failed', { db: name, error: describeError(err) });
    }
  }

  private ensure(db: string): Promise<void> {
    let p = this.dbs.get(db);
    if (!p) {
      p = ensureDb(this.opts.server, db);
      this.dbs.set(db, p);
      p.catch(() => this.dbs.delete(db));
    }
    return p;
  }

  private committer<T>(map: Map<string, GroupCommit<T, BulkRow>>, db: string): GroupCommit<T, BulkRow> {
    let c = map.get(db);
    if (!c) {
      const scope = this.opts.server.use(db);
      // Stringified here, once: nano's own stringify walks every key with a replacer.
      c = new GroupCommit<T, BulkRow>(async (docs) => {
        const rows = byId((await scope.server.request({
          db, path: '_bulk_docs', method: 'POST', body: JSON.stringify({ docs }), dontStringify: true, headers: { 'content-type': 'application/json' },
        } as never)) as BulkRow[]);
        return docs.map((d) => rows.get((d as { _id: string })._id) ?? { error: 'missing', reason: 'the store gave no result for it' });
      });
      map.set(db, c);
    }
    return c;
  }

  /** Writes made by the accept committers (specs check that accepts share them). */
  acceptWrites(): number {
    let n = 0;
    for (const c of this.accepts.values()) n += c.writes;
    return n;
  }

  /**
   * Stops heartbeats and scans and lets the finishes under way be written (a failing one is
   * not retried any more). An unfinished entry runs again at this instance's next start, or
   * on another instance once the lease is over.
   */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await Promise.allSettled([...this.finishing]);
  }
}
