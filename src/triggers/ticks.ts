/**
 * Schedule tick claims: one ordinary document per schedule trigger in the state database,
 * holding the last tick claimed; claiming tick `at` writes `last: at` with the revision read,
 * only while `last < at`, so of two runtimes one lands and the other sees the tick taken.
 * One document, not one per tick (86,400 a day at 1 s), and not `_local` (revisions unchecked,
 * so a claim would never lose); it also says when the trigger last fired, for catch-up.
 * A claim from the future is reported (./anomalies.ts) and overwritten. See docs/cluster.md.
 */
import { createHash } from 'node:crypto';
import { getDoc, putDoc, statusOf, type DocumentScope } from '../store/couch.ts';
import type { Anomalies } from './anomalies.ts';

/** How far ahead of this runtime's clock a claim may be (other runtimes' clocks run ahead a little). */
export const kMaxAheadMs = 60_000;

interface ClaimDoc {
  _id: string;
  _rev?: string;
  type: 'schedule';
  key: string;
  /** the last tick claimed, ms since the epoch. */
  last: number;
  at: string;
  by: string;
}

export class TickClaims {
  private readonly known = new Map<string, { rev?: string; last?: number }>();

  constructor(
    private readonly db: DocumentScope<unknown>,
    private readonly instance: string,
    private readonly anomalies?: Anomalies,
    private readonly now: () => number = Date.now,
  ) {}

  static docId(key: string): string {
    return `schedule-${createHash('sha1').update(key).digest('hex')}`;
  }

  /** The last tick claimed for `key`, undefined when none ever was. */
  async last(key: string): Promise<number | undefined> {
    return (await this.read(key)).last;
  }

  /** Whether this runtime won tick `at` of `key`. */
  async claim(key: string, at: number): Promise<boolean> {
    let state = this.known.get(key) ?? await this.read(key);
    for (let attempt = 0; attempt < 5; attempt++) {
      if (state.last !== undefined && state.last >= at) return false;
      const doc: ClaimDoc = { _id: TickClaims.docId(key), type: 'schedule', key, last: at, at: new Date(at).toISOString(), by: this.instance };
      if (state.rev) doc._rev = state.rev;
      try {
        const res = await putDoc(this.db, doc);
        this.known.set(key, { rev: res.rev, last: at });
        return true;
      } catch (err) {
        if (statusOf(err) !== 409) throw err;
        state = await this.read(key); // another runtime wrote first: is the tick still free?
      }
    }
    return false;
  }

  private async read(key: string): Promise<{ rev?: string; last?: number }> {
    try {
      const doc = await getDoc<ClaimDoc>(this.db, TickClaims.docId(key));
      let last = typeof doc.last === 'number' && Number.isFinite(doc.last) ? doc.last : undefined;
      if (last !== undefined && last > this.now() + kMaxAheadMs) {
        this.anomalies?.report('future-claim', doc._id, `schedule claim for ${key} says its last tick is ${Math.abs(last) <= 8.64e15 ? new Date(last).toISOString() : last}, in the future; no runtime claims ahead of time, so it is overwritten by the next tick`, { key, last });
        last = undefined;
      }
      const state = { rev: doc._rev, last };
      this.known.set(key, state);
      return state;
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
      this.known.delete(key);
      return {};
    }
  }
}
