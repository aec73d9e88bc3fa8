/**
 * Changes triggers (`{ "changes": { "db": "inbox", … } }`): one activation per change, at most
 * `concurrency` at once; the checkpoint (a `_local` document) moves past a batch only once all
 * its activations finished, so a crash loses nothing and repeats only the batch in flight.
 * One runtime follows each feed, the holder of its lease (./lease.ts); a missing, deleted or
 * unreachable database is retried with backoff while the event stays. A new trigger starts at
 * the current seq; one whose database appears later starts at its beginning.
 */
import { createHash } from 'node:crypto';
import type { ChangesTrigger, EventDef } from '../events/model.ts';
import { ChangesFeed } from '../store/feed.ts';
import { LocalCheckpoint } from '../store/checkpoint.ts';
import { readChanges, sleep, statusOf, type ChangeRow, type DocumentScope, type ServerScope } from '../store/couch.ts';
import type { Logger } from '../shared/logger.ts';
import { describeError, isLivelyError } from '../shared/errors.ts';
import { Lease } from './lease.ts';
import type { Anomalies } from './anomalies.ts';

export interface ChangesTriggerOptions {
  server: ServerScope;
  /** the logs database: checkpoints (`_local/changes-…`) and leases (`lease-changes-…`). */
  checkpoints: DocumentScope<unknown>;
  /** fires the event for one change; resolves when its workers are done. */
  fire: (event: EventDef, change: ChangeRow, db: string) => Promise<void>;
  logger: Logger;
  /** this runtime's name in lease documents. */
  instance?: string;
  /** where state no runtime could have written is reported (a bad checkpoint, a rewritten lease). */
  anomalies?: Anomalies;
  /** ms a lease lasts without renewal. */
  leaseMs?: number;
  /** changes fired at once, and so the most done twice after a crash. */
  concurrency?: number;
  /** changes read from the store per request (never fewer than `concurrency`), fired `concurrency` at a time. */
  page?: number;
  /** ms between the store's keep-alive newlines on a waiting feed. */
  heartbeat?: number;
  /** longest wait between attempts to (re)start a feed. */
  maxBackoff?: number;
  /** ms a longpoll waits for a change (a deleted database is noticed after at most this long on the embedded store). */
  pollTimeout?: number;
}

/** standby: another runtime holds the lease; starting: just took it, reading the checkpoint. */
export type FeedState = 'starting' | 'running' | 'retrying' | 'standby';

/** One changes trigger as `/_lively/status` and metrics show it. */
export interface FeedStats {
  event: string;
  db: string;
  state: FeedState;
  /** changes fetched and not yet finished, plus those the store says are still waiting. */
  lag?: number;
  /** the seq the trigger resumes from. */
  checkpoint?: string;
  /** the runtime holding the lease, as last seen. */
  holder?: string | null;
  lastError?: string;
}

export const kChangesTriggerDefaults = Object.freeze({ leaseMs: 15_000, concurrency: 100, page: 400, heartbeat: 10_000, maxBackoff: 30_000, pollTimeout: 30_000 });
const kBackoffStart = 250;

class LeaseLost extends Error {
  constructor() { super('the lease was lost: the batch is left to the next holder'); }
}

/** One trigger of one event: its lease, its checkpoint and, while it holds the lease, its feed. */
class Follower {
  state: FeedState = 'standby';
  lastError: string | undefined;
  since: string | undefined;
  private feed: ChangesFeed | undefined;
  private readonly lease: Lease;
  private readonly checkpoint: LocalCheckpoint;
  private retryTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  /** the database was missing: when it appears, all its changes are new. */
  private fromStart = false;
  private stopped = false;
  /** set when shutdown gave up waiting for the batch in flight: it must not be checkpointed. */
  abandoned = false;
  private unfinished = 0;
  /** changes of the page read last that no batch has started yet. */
  private queued = 0;
  private pending: number | undefined;
  private starting: Promise<void> | undefined;

  constructor(
    readonly event: EventDef,
    readonly trigger: ChangesTrigger,
    readonly key: string,
    private readonly opts: Required<Omit<ChangesTriggerOptions, 'instance' | 'anomalies'>> & { instance: string; anomalies?: Anomalies },
  ) {
    const name = stateName(key);
    this.checkpoint = new LocalCheckpoint(opts.checkpoints, `changes-${name}`);
    this.lease = new Lease({
      db: opts.checkpoints, id: `lease-changes-${name}`, holder: opts.instance, leaseMs: opts.leaseMs,
      info: { event: event.id, db: trigger.db }, logger: opts.logger, anomalies: opts.anomalies,
    });
    this.lease.on('acquired', () => this.begin());
    this.lease.on('lost', () => this.pause());
    this.lease.on('error', (err: unknown) => opts.logger.debug('changes trigger lease', { event: event.id, db: trigger.db, error: describeError(err) }));
  }

  /** Whether this runtime follows the feed now. */
  get following(): boolean {
    return this.state === 'running' && this.feed !== undefined;
  }

  start(): void {
    this.lease.start();
  }

  stats(): FeedStats {
    const s: FeedStats = { event: this.event.id, db: this.trigger.db, state: this.state, holder: this.lease.holder };
    if (this.feed) s.lag = this.unfinished + this.queued + (this.pending ?? 0);
    if (this.since !== undefined) s.checkpoint = this.since;
    if (this.lastError !== undefined) s.lastError = this.lastError;
    return s;
  }

  private begin(): void {
    if (this.stopped || this.starting) return;
    this.state = 'starting';
    this.starting = this.startFeed().catch((err) => this.retry(err)).finally(() => { this.starting = undefined; });
  }

  private retry(err: unknown): void {
    if (this.stopped) return;
    this.feed = undefined;
    this.state = this.lease.held ? 'retrying' : 'standby';
    this.lastError = describeError(err);
    const delay = Math.min(this.opts.maxBackoff, kBackoffStart * 2 ** this.attempt++);
    this.opts.logger.warn('changes trigger not following; retrying', { event: this.event.id, db: this.trigger.db, error: this.lastError, in: delay });
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => { this.retryTimer = undefined; if (this.lease.valid()) this.begin(); }, delay);
    this.retryTimer.unref();
  }

  private async startFeed(): Promise<void> {
    const db = this.opts.server.use<unknown>(this.trigger.db);
    let since = await this.checkpoint.load();
    let updateSeq: string;
    try {
      updateSeq = String((await db.info()).update_seq);
    } catch (err) {
      if (statusOf(err) === 404) this.fromStart = true;
      throw err;
    }
    if (this.fromStart) {
      since = '0';
    } else if (since !== undefined) {
      const why = await checkpointProblem(db, since, updateSeq);
      if (why !== undefined) {
        const detail = `the checkpoint of the changes trigger of ${this.event.id} on ${this.trigger.db} is ${JSON.stringify(since)}, which ${why}; resuming from the database's current seq (changes since the true checkpoint cannot be known)`;
        if (this.opts.anomalies) this.opts.anomalies.report('bad-checkpoint', this.checkpoint.id, detail, { event: this.event.id, db: this.trigger.db });
        else this.opts.logger.error(detail);
        since = updateSeq;
      }
    } else {
      // First start: from now on, remembered at once so a restart before the first change misses nothing.
      since = updateSeq;
    }
    if (!this.lease.valid() || this.stopped) { if (!this.stopped) this.state = 'standby'; return; }
    await this.checkpoint.save(since);
    this.fromStart = false;
    this.since = since;
    const feed = new ChangesFeed(db, {
      since,
      includeDocs: this.trigger.includeDocs,
      selector: this.trigger.selector,
      batchSize: this.opts.concurrency,
      pageSize: this.opts.page,
      heartbeat: this.opts.heartbeat,
      timeout: this.opts.pollTimeout,
      maxBackoff: this.opts.maxBackoff,
      logger: this.opts.logger,
      onBatch: (rows) => this.handle(rows),
      checkpoint: async (seq) => {
        if (!this.lease.valid()) return; // the next holder replays from the last one written
        await this.checkpoint.save(seq);
        this.since = seq;
      },
    });
    feed.on('page', (p: { results: number; pending?: number }) => {
      this.pending = p.pending;
      this.queued = p.results;
      if (this.state !== 'running') { this.state = 'running'; this.attempt = 0; }
    });
    feed.on('retry', (err: unknown) => {
      if (err instanceof LeaseLost) return;
      this.state = 'retrying';
      this.lastError = describeError(err);
    });
    feed.on('error', (err: unknown) => {
      // fatal for this feed (the database is gone, access refused): start over with backoff
      if (this.feed !== feed) return;
      if ((err as { details?: { status?: number } }).details?.status === 404) this.fromStart = true;
      this.retry(err);
    });
    this.feed = feed;
    this.state = 'running';
    this.lastError = undefined;
    this.attempt = 0;
    feed.start();
  }

  private async handle(rows: ChangeRow[]): Promise<void> {
    if (!this.lease.valid()) { this.pause(); throw new LeaseLost(); }
    this.unfinished = rows.length;
    this.queued = Math.max(0, this.queued - rows.length);
    await Promise.all(rows.map(async (row) => {
      // a holder that lost its lease (paused, cut off) fires nothing more
      if (!this.lease.valid() || this.stopped) return;
      try {
        // a full dispatch queue is back-pressure: wait for room, never skip the change
        for (let wait = 20; ; wait = Math.min(wait * 2, 1_000)) {
          try {
            await this.opts.fire(this.event, row, this.trigger.db);
            return;
          } catch (err) {
            if (!isLivelyError(err, 'LC_QUEUE_FULL') || this.stopped || !this.lease.valid()) throw err;
            await sleep(wait);
          }
        }
      } finally {
        this.unfinished--;
      }
    }));
    if (!this.lease.valid()) { this.pause(); throw new LeaseLost(); }
    if (this.abandoned) throw new Error('shutting down: the batch did not finish in time and is left unacknowledged');
  }

  /** The lease is gone: stop following (the batch in flight finishes, uncheckpointed). */
  private pause(): void {
    if (this.retryTimer) { clearTimeout(this.retryTimer); this.retryTimer = undefined; }
    const feed = this.feed;
    this.feed = undefined;
    this.unfinished = 0;
    this.queued = 0;
    this.pending = undefined;
    if (!this.stopped) this.state = 'standby';
    void feed?.stop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.starting;
    const feed = this.feed;
    this.feed = undefined;
    await feed?.stop();
    await this.lease.release();
  }
}

export class ChangesTriggers {
  private readonly running = new Map<string, Follower[]>();
  private readonly latest = new Map<string, EventDef | undefined>();
  private readonly chains = new Map<string, Promise<void>>();
  private readonly opts: Required<Omit<ChangesTriggerOptions, 'instance' | 'anomalies'>> & { instance: string; anomalies?: Anomalies };
  private closed = false;

  constructor(options: ChangesTriggerOptions) {
    this.opts = {
      ...kChangesTriggerDefaults,
      ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
      instance: options.instance ?? `${process.pid}-${Math.random().toString(36).slice(2, 10)}`,
    } as typeof this.opts;
  }

  /**
   * Reconciles one event's feeds with its current definition. Calls for one event run one
   * after another; unchanged triggers keep their feeds (and positions).
   */
  set(id: string, event: EventDef | undefined): Promise<void> {
    this.latest.set(id, event);
    const next = (this.chains.get(id) ?? Promise.resolve()).then(() => this.reconcile(id, event));
    this.chains.set(id, next.catch(() => undefined));
    return next;
  }

  private async reconcile(id: string, event: EventDef | undefined): Promise<void> {
    if (this.latest.get(id) !== event || this.closed) return; // a newer definition is queued
    const wanted = !event || event.disabled ? [] : event.triggers.filter((t): t is ChangesTrigger => t.kind === 'changes');
    const keys = wanted.map((t) => triggerKey(id, t));
    const current = this.running.get(id) ?? [];
    if (current.length === keys.length && current.every((r, i) => r.key === keys[i])) {
      return; // same triggers: keep the feeds (and their positions) running
    }
    await Promise.all(current.map((r) => r.stop()));
    this.running.delete(id);
    if (!event || wanted.length === 0) { this.latest.delete(id); return; }
    const followers = wanted.map((t, i) => new Follower(event, t, keys[i]!, this.opts));
    this.running.set(id, followers);
    for (const f of followers) f.start();
  }

  /** How many feeds of this event this runtime follows now (status, specs). */
  feeds(id: string): number {
    return (this.running.get(id) ?? []).filter((f) => f.following).length;
  }

  /** Every changes trigger: its database, whether this runtime follows, stands by or retries, and why. */
  stats(): FeedStats[] {
    return [...this.running.values()].flat().map((f) => f.stats());
  }

  /**
   * Stops every feed; the batches in flight get until `deadlineMs` to finish. A batch still
   * running then is not checkpointed: the next start replays it.
   */
  async close(deadlineMs = 10_000): Promise<void> {
    this.closed = true;
    const all = [...this.running.values()].flat();
    this.running.clear();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => { timer = setTimeout(resolve, deadlineMs); timer.unref(); });
    await Promise.race([Promise.all(all.map((f) => f.stop())), late.then(() => { for (const f of all) f.abandoned = true; })]);
    clearTimeout(timer);
  }
}

/**
 * Why `since` cannot be a seq this database gave, or undefined when it can. CouchDB 3 seqs are
 * opaque: the store is asked (it refuses a seq it cannot decode with 400). Only where both are
 * plain integers (the embedded store) are they compared, as numbers: ahead of the database is
 * impossible.
 */
export async function checkpointProblem(db: DocumentScope<unknown>, since: string, updateSeq: string): Promise<string | undefined> {
  if (/^\d+$/.test(since) && /^\d+$/.test(updateSeq) && BigInt(since) > BigInt(updateSeq)) {
    return `is ahead of the database's update_seq ${updateSeq}`;
  }
  try {
    await readChanges(db, { since, limit: 1 });
  } catch (err) {
    if (statusOf(err) === 400) return `the database refuses as a seq (${describeError(err)})`;
    throw err;
  }
  return undefined;
}

/** Names one changes trigger of one event across runtimes and restarts. */
export function triggerKey(eventId: string, t: ChangesTrigger): string {
  return `${eventId}:${digest(t)}`;
}

/** The trigger's documents in the state database: `_local/changes-<name>` and `lease-changes-<name>`. */
export function stateName(key: string): string {
  return createHash('sha1').update(key).digest('hex');
}

function digest(t: ChangesTrigger): string {
  return createHash('sha1').update(JSON.stringify([t.db, t.selector ?? null, t.includeDocs])).digest('hex').slice(0, 12);
}
