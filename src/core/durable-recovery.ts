/**
 * Recovery of the durable journal's orphans. Each batch names its owner `<instance>/<boot>`,
 * and every instance keeps a heartbeat document. A batch is orphaned when its owner is an
 * earlier boot of this instance, or an instance whose heartbeat is missing, from another boot,
 * or older than the lease. Orphans are claimed through the state database (a
 * `durable-claim-<day>-<batch>` document written with the `_rev` read: the 409 loser skips
 * them; that database is q=1, n=1, so on a cluster too only one instance wins), then marked in
 * the batch, and their unfinished entries run again: on start, then every third of the lease.
 */
import { describeError, type LivelyError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { putDoc, statusOf, type DocumentScope, type ServerScope } from '../store/couch.ts';
import { dropDayDb, kDayMs, type DayDbs } from '../store/days.ts';
import { batchEntries, bulk, type DurableEntry, type DurableRef, type JournalBatch, type Owned } from './durable-store.ts';
import { kStopWaitMs, settledWithin } from '../shared/settle.ts';

/** Runs an entry again; the promise settles when its activation is done. Undefined: nothing to run. */
export type Rerun = (entry: DurableEntry, ref: DurableRef) => { done: Promise<unknown> } | undefined;

type Heartbeats = Map<string, { boot?: string; at?: number } | null>;

/** What recovery needs of the journal it recovers for. */
export interface RecoveryHost {
  readonly owner: string;
  readonly boot: string;
  readonly closed: boolean;
  /** a claimed batch is this boot's from now on. */
  adopt(id: string, owned: Owned): void;
  finish(ref: DurableRef): void;
  /** a day's database was dropped. */
  dropped(db: string, wasDropped: boolean): void;
  readonly stats: { recovered: number };
}

export interface RecoveryOptions {
  server: ServerScope;
  instance: string;
  heartbeats: DocumentScope<unknown>;
  logger: Logger;
  leaseMs: number;
  recoveryConcurrency?: number;
  days: DayDbs;
  /** how often a scan lists every journal day whole (default kFullScanMs). */
  fullScanMs?: number;
}

/** Batches read per request of a scan. */
const kPage = 100;
/**
 * A scan lists a day from this long before the oldest batch it held at the last scan (or before
 * that scan's start, when it held none), not from the day's start: batch ids begin with the
 * time they were written, and a day's finished batches are tombstones that a listing steps over
 * one by one, so under steady durable load a scan from the start reads more every time. What
 * it could miss is a batch written since with an id from further back: by an instance whose
 * clock is more than this behind. The full scans find those.
 */
const kFloorMarginMs = 60_000;
/** Every journal day is listed whole at least this often, and by the first scan of a boot. */
const kFullScanMs = 3_600_000;

/** The time a batch id begins with (`<ms in base 36, 8 digits>-…`, src/core/durable.ts), if it does. */
function writtenAt(id: string): number | undefined {
  return /^[0-9a-z]{8}-/.test(id) ? parseInt(id.slice(0, 8), 36) : undefined;
}

/** The least id a batch written at `t` or later can have, if `t` has the 8 digits ids have. */
function idFloor(t: number): string | undefined {
  const s = Math.floor(t).toString(36);
  return s.length === 8 ? s : undefined;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

export class DurableRecovery {
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private recovering: Promise<number> | undefined;
  private heartbeatRev: string | undefined;
  /** by journal day: where the next scan starts listing it (kFloorMarginMs). */
  private readonly floors = new Map<string, string>();
  private lastFullScan = -Infinity;

  constructor(private readonly opts: RecoveryOptions, private readonly host: RecoveryHost) {}

  /** Heartbeat, then recovery now and every third of the lease. */
  async start(rerun: Rerun): Promise<void> {
    await this.heartbeat().catch((err) => this.failed('durable heartbeat failed', err));
    if (this.host.closed) return; // closed while the first heartbeat was written: no ticks
    const tick = async () => {
      await this.heartbeat().catch((err) => this.failed('durable heartbeat failed', err));
      await this.recover(rerun).catch((err) => this.failed('durable recovery failed', err));
    };
    this.timer = setInterval(() => { this.ticking ??= tick().finally(() => { this.ticking = undefined; }); }, Math.max(1_000, Math.floor(this.opts.leaseMs / 3)));
    this.timer.unref();
    void this.recover(rerun).catch((err) => this.failed('durable recovery failed', err));
  }

  /**
   * No more ticks; resolves once the heartbeat and scan in flight have ended (a scan stops at its
   * next page once the journal is closed), or after kStopWaitMs on a store that does not answer:
   * the runtime stops the embedded store only after this, so a scan is not cut off in the middle
   * of a request.
   */
  stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    return settledWithin([this.ticking, this.recovering], kStopWaitMs);
  }

  /** A failure while the journal runs is a warning; one after it closed is the closing's doing. */
  private failed(what: string, err: unknown): void {
    if (this.host.closed) this.opts.logger.debug(`${what} while closing`, { error: describeError(err) });
    else this.opts.logger.warn(what, { error: describeError(err) });
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
    const began = Date.now();
    const full = began - this.lastFullScan >= (this.opts.fullScanMs ?? kFullScanMs);
    const days = (await this.opts.days.list(server)).map((d) => d.name).reverse(); // oldest first
    const heartbeats: Heartbeats = new Map();
    let claimed = 0;
    const running = new Set<Promise<unknown>>();
    const limit = this.opts.recoveryConcurrency ?? 256;
    for (const name of days) {
      const db = server.use<JournalBatch>(name);
      // A day that holds no batch is not listed: its finished batches are tombstones, and a
      // listing steps over each of them (the embedded store about 14 µs apiece), every scan,
      // for as long as the day is kept; its count of live documents costs one request.
      let live: number;
      try {
        live = (await server.db.get(name)).doc_count;
      } catch (err) {
        if (statusOf(err) === 404) continue; // dropped meanwhile
        throw err;
      }
      let startkey = full ? undefined : this.floors.get(name);
      /** the first batch listed: the day's oldest from where the listing began. */
      let oldest: string | undefined;
      let listed = live === 0;
      // A page short of the limit reached the day's last batch as the scan found it. Batches
      // written since are the next scan's: asking again would chase a journal that keeps
      // growing under steady durable load, a request after request for as long as it lasts.
      for (let last = live === 0; !last;) {
        if (this.host.closed) return claimed;
        let page;
        try {
          // From just past the last id seen (not `skip: 1`: that batch may be deleted by now).
          page = await db.list({ include_docs: true, limit: kPage, ...(startkey !== undefined ? { startkey } : {}) });
        } catch (err) {
          if (statusOf(err) === 404) break; // dropped meanwhile
          throw err;
        }
        last = page.rows.length < kPage;
        listed = last;
        oldest ??= page.rows[0]?.id;
        if (page.rows.length > 0) startkey = page.rows[page.rows.length - 1]!.id + '\u0000';
        const orphans: Array<{ doc: JournalBatch; entries: DurableEntry[] }> = [];
        for (const row of page.rows) {
          if (this.host.closed) return claimed;
          const doc = row.doc as JournalBatch | undefined;
          // The owner first: a live batch's entries are not read at all.
          if (doc?.type !== 'durable' || typeof doc.owner !== 'string' || !(await this.orphaned(doc.owner, heartbeats))) continue;
          const entries = batchEntries(doc);
          if (entries && await this.arbitrate(name, doc, heartbeats)) orphans.push({ doc, entries });
        }
        if (orphans.length === 0) continue;
        const now = Date.now();
        const owner = this.host.owner;
        const rows = await bulk(server, name, orphans.map(({ doc }) => ({ ...doc, owner, claimed: now })));
        for (const { doc, entries } of orphans) {
          const r = rows.get(doc._id);
          if (!r || r.error || !r.rev) continue; // another instance claimed it first (409)
          const mine: JournalBatch = { ...doc, _rev: r.rev, owner, claimed: now };
          const owned: Owned = { db: name, doc: mine, count: entries.length, done: new Set(doc.done ?? []), dirty: false, writtenAt: now };
          this.host.adopt(doc._id, owned);
          for (const entry of entries) {
            if (owned.done.has(entry.activation)) continue;
            claimed++;
            this.host.stats.recovered++;
            while (running.size >= limit) await Promise.race(running);
            const p = this.runClaimed(entry, { db: name, batch: doc._id, activation: entry.activation }, rerun).finally(() => running.delete(p));
            running.add(p);
          }
        }
      }
      if (listed) {
        const floor = idFloor(Math.min(oldest === undefined ? began : writtenAt(oldest) ?? 0, began) - kFloorMarginMs);
        if (floor) this.floors.set(name, floor);
        else this.floors.delete(name);
      }
      await this.dropIfDone(name);
    }
    if (full) this.lastFullScan = began;
    if (claimed > 0) logger.info('durable activations claimed to run again', { count: claimed });
    return claimed;
  }

  /** Runs one claimed entry, waiting while the gate is full; finishes it when nothing is left to run. */
  private async runClaimed(entry: DurableEntry, ref: DurableRef, rerun: Rerun): Promise<void> {
    for (;;) {
      if (this.host.closed) return;
      try {
        const fired = rerun(entry, ref);
        if (!fired) {
          this.opts.logger.warn('durable activation dropped: none of its events is enabled', { activation: entry.activation, events: entry.events.map((e) => e.id) });
          this.host.finish(ref);
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
  private async arbitrate(db: string, batch: JournalBatch, heartbeats: Heartbeats): Promise<boolean> {
    const id = `durable-claim-${db}-${batch._id}`;
    let claim: { _rev?: string; owner?: string } | undefined;
    try {
      claim = (await this.opts.heartbeats.get(id)) as { _rev?: string; owner?: string };
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
    if (claim?.owner && claim.owner !== batch.owner) {
      if (claim.owner === this.host.owner) return false; // ours already, being run
      if (!(await this.orphaned(claim.owner, heartbeats))) return false;
    }
    try {
      await putDoc(this.opts.heartbeats, { _id: id, ...(claim?._rev ? { _rev: claim._rev } : {}), type: 'durable-claim', db, batch: batch._id, owner: this.host.owner, at: Date.now() });
      return true;
    } catch (err) {
      if (statusOf(err) === 409) return false; // another instance claimed it first
      throw err;
    }
  }

  private async orphaned(owner: string, heartbeats: Heartbeats): Promise<boolean> {
    const slash = owner.lastIndexOf('/');
    const instance = owner.slice(0, slash);
    const boot = owner.slice(slash + 1);
    if (boot === this.host.boot) return false; // ours, running now
    if (instance === this.opts.instance) return true; // an earlier boot of this instance
    if (!heartbeats.has(instance)) heartbeats.set(instance, await this.readHeartbeat(instance));
    const hb = heartbeats.get(instance);
    return !hb || hb.boot !== boot || typeof hb.at !== 'number' || Date.now() - hb.at > this.opts.leaseMs;
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
      const doc: Record<string, unknown> = { _id: id, boot: this.host.boot, at: Date.now() };
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
    const day = this.opts.days.parse(name)!.start;
    if (day >= Date.now() - 2 * kDayMs) return;
    try {
      const info = await this.opts.server.db.get(name);
      if (info.doc_count !== 0) return;
      const dropped = await dropDayDb(this.opts.server, name);
      this.floors.delete(name);
      await this.dropClaims(name);
      this.host.dropped(name, dropped);
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
}
