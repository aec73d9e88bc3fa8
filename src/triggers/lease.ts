/**
 * A lease held in an ordinary document of the logs database, so that of several runtimes
 * on one CouchDB only one at a time does a job (follows one changes trigger's feed).
 *
 * Every claim and renewal is a write carrying the revision last read: of two runtimes
 * writing at once one gets 409 and stands by. (Ordinary documents, not `_local` ones:
 * Apache CouchDB does not check revisions on `_local` writes, so they cannot arbitrate.)
 *
 * Expiry needs no agreement between clocks: a runtime standing by takes over only after
 * it has seen the same revision for a whole lease period on its own clock; the holder
 * renews every third of a period and counts itself deposed once a period has passed since
 * the start of its last renewal that landed. A holder that is paused, cut off from the store
 * or overtaken therefore stops before anyone else can start (`valid()` turns false, and
 * `lost` is emitted when it notices). A graceful `release()` lets the others in at once.
 *
 * On a cluster this holds only where a 409 is reliable: the lease documents live in the state
 * database, made with q=1, n=1 (src/store/state-db.ts), whose writes one shard serialises.
 *
 * A holder whose renewal gets 409 while its period has not run out was not overtaken by a
 * runtime (they wait a whole period after the last renewal they saw): someone rewrote the
 * document. That is reported (./anomalies.ts), and the holder takes the lease back when the
 * document names no holder or a holder ordered after it (so two runtimes that each think the
 * other rewrote it settle on one); otherwise it steps back as usual.
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
  #rev: string | undefined;
  #held = false;
  /** when the last renewal that landed was sent (own clock). */
  #renewedAt = 0;
  /** a revision seen while standing by, and since when. */
  #seen: { rev: string | undefined; since: number } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #busy: Promise<void> = Promise.resolve();
  #lastHolder: string | null = null;
  readonly #now: () => number;

  constructor(private readonly opts: LeaseOptions) {
    super();
    this.#now = opts.now ?? Date.now;
  }

  get held(): boolean {
    return this.#held;
  }

  /** The holder last seen in the document (this runtime's id when it holds the lease). */
  get holder(): string | null {
    return this.#lastHolder;
  }

  /** Whether this runtime may still act: it holds the lease and a period has not run out. */
  valid(): boolean {
    return this.#held && this.#now() - this.#renewedAt < this.opts.leaseMs;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#tick();
  }

  /** Stops renewing; a held lease is handed back so another runtime can take it at once. */
  async release(): Promise<void> {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#busy;
    if (!this.#held) return;
    this.#held = false;
    try {
      await putDoc(this.opts.db, this.#doc(null));
    } catch (err) {
      // 409: someone took it meanwhile; otherwise it simply expires
      if (statusOf(err) !== 409) this.opts.logger.debug('lease not released', { lease: this.opts.id, error: describeError(err) });
    }
  }

  #tick(): void {
    if (!this.#running) return;
    this.#busy = this.#step().catch((err) => { this.emit('error', err); });
    void this.#busy.then(() => {
      if (!this.#running) return;
      // the holder renews three times a period; a runtime standing by looks as often
      this.#timer = setTimeout(() => this.#tick(), Math.max(10, Math.floor(this.opts.leaseMs / 3)));
      this.#timer.unref();
    });
  }

  async #step(): Promise<void> {
    if (this.#held) {
      if (!this.valid()) { this.#lose('not renewed within a lease period'); }
      else { await this.#renew(); return; }
    }
    await this.#watch();
  }

  async #renew(): Promise<void> {
    const sent = this.#now();
    try {
      const res = await putDoc(this.opts.db, this.#doc(this.opts.holder));
      this.#rev = res.rev;
      this.#renewedAt = sent;
    } catch (err) {
      if (statusOf(err) === 409) { await this.#contested(); return; }
      // the store is away: keep trying; valid() runs out on its own
      this.emit('error', err);
      if (!this.valid()) this.#lose('not renewed within a lease period');
    }
  }

  /** A renewal got 409: our own write that landed unseen, a takeover, or a rewrite by someone else. */
  async #contested(): Promise<void> {
    let doc: Partial<LeaseDoc> | undefined;
    try {
      doc = await getDoc<LeaseDoc>(this.opts.db, this.opts.id);
    } catch (err) {
      if (statusOf(err) !== 404) { this.emit('error', err); return; } // try again next round
    }
    if (doc && doc.holder === this.opts.holder && doc._rev) { this.#rev = doc._rev; return; }
    if (!this.valid()) { this.#lose('taken over by another runtime'); return; }
    const holder = typeof doc?.holder === 'string' ? doc.holder : null;
    const reclaim = holder === null || this.opts.holder < holder;
    const detail = `lease ${this.opts.id} was ${doc ? `rewritten (holder ${JSON.stringify(doc.holder ?? null)})` : 'deleted'} while this runtime's period had not run out; ${reclaim ? 'taken back' : 'stepping back'}`;
    if (this.opts.anomalies) this.opts.anomalies.report('lease-rewritten', this.opts.id, detail, { holder: this.opts.holder });
    else this.opts.logger.error(detail, { lease: this.opts.id });
    if (!reclaim) { this.#lose('rewritten by someone else'); return; }
    this.#rev = doc?._rev;
    const sent = this.#now();
    try {
      const res = await putDoc(this.opts.db, this.#doc(this.opts.holder));
      this.#rev = res.rev;
      this.#renewedAt = sent;
      this.#lastHolder = this.opts.holder;
    } catch (err) {
      if (statusOf(err) === 409) { this.#lose('taken over by another runtime'); return; }
      this.emit('error', err);
    }
  }

  async #watch(): Promise<void> {
    let doc: LeaseDoc | undefined;
    try {
      doc = await getDoc<LeaseDoc>(this.opts.db, this.opts.id);
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
    const now = this.#now();
    if (!doc) { await this.#claim(undefined, now); return; }
    this.#lastHolder = doc.holder ?? null;
    if (!doc.holder) { await this.#claim(doc._rev, now); return; }
    if (!this.#seen || this.#seen.rev !== doc._rev) { this.#seen = { rev: doc._rev, since: now }; return; }
    if (now - this.#seen.since >= this.opts.leaseMs) await this.#claim(doc._rev, now);
  }

  async #claim(rev: string | undefined, sent: number): Promise<void> {
    this.#rev = rev;
    try {
      const res = await putDoc(this.opts.db, this.#doc(this.opts.holder));
      this.#rev = res.rev;
      this.#renewedAt = sent;
      this.#held = true;
      this.#seen = undefined;
      this.#lastHolder = this.opts.holder;
      this.emit('acquired');
    } catch (err) {
      if (statusOf(err) !== 409) throw err;
      this.#seen = undefined; // someone else won: watch their revision from now on
    }
  }

  #lose(why: string): void {
    if (!this.#held) return;
    this.#held = false;
    this.#seen = undefined;
    this.opts.logger.warn('lease lost', { lease: this.opts.id, why });
    this.emit('lost', why);
  }

  #doc(holder: string | null): LeaseDoc {
    const doc: LeaseDoc = { ...this.opts.info, _id: this.opts.id, type: 'lease', holder, leaseMs: this.opts.leaseMs, renewed: new Date().toISOString() };
    if (this.#rev) doc._rev = this.#rev;
    return doc;
  }
}
