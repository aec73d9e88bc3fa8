/**
 * A lease in an ordinary document of the state database, so that of several runtimes only one
 * follows a changes trigger's feed. Claims and renewals write with the revision read (a 409
 * loses; `_local` writes are not checked, so they cannot arbitrate). Expiry needs no shared
 * clock: a stander-by takes over after seeing one revision for a whole period, the holder
 * renews every third of one and stops once a period passed since its last landed renewal.
 * A 409 within its period means someone rewrote the document: reported (./anomalies.ts) and
 * settled on one holder. Why it holds on a cluster: docs/cluster.md.
 */
import { EventEmitter } from 'node:events';
import { getDoc, putDoc, statusOf, type DocumentScope } from '../store/couch.ts';
import { describeError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { Anomalies } from './anomalies.ts';

export interface LeaseOptions {
  db: DocumentScope<unknown>;
  /** the lease document's id. */
  id: string;
  /** who holds it: unique per runtime instance. */
  holder: string;
  /** ms without renewal after which the lease is up for grabs. */
  leaseMs: number;
  /** written into the document for people reading it. */
  info?: Record<string, unknown>;
  logger: Logger;
  anomalies?: Anomalies;
  now?: () => number;
}

interface LeaseDoc {
  _id: string;
  _rev?: string;
  type: 'lease';
  holder: string | null;
  leaseMs: number;
  renewed: string;
}

/** Events: 'acquired', 'lost' (a holder that was deposed or gave up), 'error' (err) — never fatal. */
export class Lease extends EventEmitter {
  private rev: string | undefined;
  private holding = false;
  /** when the last renewal that landed was sent (own clock). */
  private renewedAt = 0;
  /** a revision seen while standing by, and since when. */
  private seen: { rev: string | undefined; since: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private busy: Promise<void> = Promise.resolve();
  private lastHolder: string | null = null;
  private readonly now: () => number;

  constructor(private readonly opts: LeaseOptions) {
    super();
    this.now = opts.now ?? Date.now;
  }

  get held(): boolean {
    return this.holding;
  }

  /** The holder last seen in the document (this runtime's id when it holds the lease). */
  get holder(): string | null {
    return this.lastHolder;
  }

  /** Whether this runtime may still act: it holds the lease and a period has not run out. */
  valid(): boolean {
    return this.holding && this.now() - this.renewedAt < this.opts.leaseMs;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.tick();
  }

  /** Stops renewing; a held lease is handed back so another runtime can take it at once. */
  async release(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    await this.busy;
    if (!this.holding) return;
    this.holding = false;
    try {
      await putDoc(this.opts.db, this.doc(null));
    } catch (err) {
      // 409: someone took it meanwhile; otherwise it simply expires
      if (statusOf(err) !== 409) this.opts.logger.debug('lease not released', { lease: this.opts.id, error: describeError(err) });
    }
  }

  private tick(): void {
    if (!this.running) return;
    this.busy = this.step().catch((err) => { this.emit('error', err); });
    void this.busy.then(() => {
      if (!this.running) return;
      // the holder renews three times a period; a runtime standing by looks as often
      this.timer = setTimeout(() => this.tick(), Math.max(10, Math.floor(this.opts.leaseMs / 3)));
      this.timer.unref();
    });
  }

  private async step(): Promise<void> {
    if (this.holding) {
      if (!this.valid()) { this.lose('not renewed within a lease period'); }
      else { await this.renew(); return; }
    }
    await this.watch();
  }

  private async renew(): Promise<void> {
    const sent = this.now();
    try {
      const res = await putDoc(this.opts.db, this.doc(this.opts.holder));
      this.rev = res.rev;
      this.renewedAt = sent;
    } catch (err) {
      if (statusOf(err) === 409) { await this.contested(); return; }
      // the store is away: keep trying; valid() runs out on its own
      this.emit('error', err);
      if (!this.valid()) this.lose('not renewed within a lease period');
    }
  }

  /** A renewal got 409: our own write that landed unseen, a takeover, or a rewrite by someone else. */
  private async contested(): Promise<void> {
    let doc: Partial<LeaseDoc> | undefined;
    try {
      doc = await getDoc<LeaseDoc>(this.opts.db, this.opts.id);
    } catch (err) {
      if (statusOf(err) !== 404) { this.emit('error', err); return; } // try again next round
    }
    if (doc && doc.holder === this.opts.holder && doc._rev) { this.rev = doc._rev; return; }
    if (!this.valid()) { this.lose('taken over by another runtime'); return; }
    const holder = typeof doc?.holder === 'string' ? doc.holder : null;
    const reclaim = holder === null || this.opts.holder < holder;
    const detail = `lease ${this.opts.id} was ${doc ? `rewritten (holder ${JSON.stringify(doc.holder ?? null)})` : 'deleted'} while this runtime's period had not run out; ${reclaim ? 'taken back' : 'stepping back'}`;
    if (this.opts.anomalies) this.opts.anomalies.report('lease-rewritten', this.opts.id, detail, { holder: this.opts.holder });
    else this.opts.logger.error(detail, { lease: this.opts.id });
    if (!reclaim) { this.lose('rewritten by someone else'); return; }
    this.rev = doc?._rev;
    const sent = this.now();
    try {
      const res = await putDoc(this.opts.db, this.doc(this.opts.holder));
      this.rev = res.rev;
      this.renewedAt = sent;
      this.lastHolder = this.opts.holder;
    } catch (err) {
      if (statusOf(err) === 409) { this.lose('taken over by another runtime'); return; }
      this.emit('error', err);
    }
  }

  private async watch(): Promise<void> {
    let doc: LeaseDoc | undefined;
    try {
      doc = await getDoc<LeaseDoc>(this.opts.db, this.opts.id);
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
    const now = this.now();
    if (!doc) { await this.claim(undefined, now); return; }
    this.lastHolder = doc.holder ?? null;
    if (!doc.holder) { await this.claim(doc._rev, now); return; }
    if (!this.seen || this.seen.rev !== doc._rev) { this.seen = { rev: doc._rev, since: now }; return; }
    if (now - this.seen.since >= this.opts.leaseMs) await this.claim(doc._rev, now);
  }

  private async claim(rev: string | undefined, sent: number): Promise<void> {
    this.rev = rev;
    try {
      const res = await putDoc(this.opts.db, this.doc(this.opts.holder));
      this.rev = res.rev;
      this.renewedAt = sent;
      this.holding = true;
      this.seen = undefined;
      this.lastHolder = this.opts.holder;
      this.emit('acquired');
    } catch (err) {
      if (statusOf(err) !== 409) throw err;
      this.seen = undefined; // someone else won: watch their revision from now on
    }
  }

  private lose(why: string): void {
    if (!this.holding) return;
    this.holding = false;
    this.seen = undefined;
    this.opts.logger.warn('lease lost', { lease: this.opts.id, why });
    this.emit('lost', why);
  }

  private doc(holder: string | null): LeaseDoc {
    const doc: LeaseDoc = { ...this.opts.info, _id: this.opts.id, type: 'lease', holder, leaseMs: this.opts.leaseMs, renewed: new Date().toISOString() };
    if (this.rev) doc._rev = this.rev;
    return doc;
  }
}
