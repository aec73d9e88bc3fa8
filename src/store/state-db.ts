/**
 * The state database (`<prefix>logs`: leases, tick claims, checkpoints, durable heartbeats).
 * Runtimes arbitrate by writing with the revision read, which holds only where a 409 reliably
 * means "lost": on a cluster, a database of one shard and one copy (q=1, n=1); one made earlier
 * with more copies is reported. Its growth is bounded by a low revision limit and `_compact`
 * (StateCompactor). Why and what it costs: docs/cluster.md.
 */
import type { Logger } from '../shared/logger.ts';
import { describeError } from '../shared/errors.ts';
import { createDb, dbInfo, sendJson, statusOf, type ServerScope } from './couch.ts';
import { kStopWaitMs, settledWithin } from '../shared/settle.ts';

/** Revisions kept per document: a lease or claim needs only its latest. */
export const kStateRevsLimit = 20;

export async function ensureStateDb(server: ServerScope, name: string): Promise<void> {
  try {
    await createDb(server, name, { q: 1, n: 1 });
  } catch (err) {
    if (statusOf(err) !== 412) throw err;
    return;
  }
  try {
    await sendJson(server, 'PUT', { db: name, path: '_revs_limit' }, String(kStateRevsLimit));
  } catch {
    // the embedded store has no _revs_limit; compaction alone bounds it there
  }
}

export interface Placement {
  /** the nodes holding a copy of the state database (CouchDB 2+; empty on the embedded store). */
  nodes: string[];
  /** the most copies any of its shards has: 1 is what arbitration needs. */
  copies: number;
  warning?: string;
}

/** Where the state database lives, and whether its writes serialise. */
export async function placement(server: ServerScope, name: string): Promise<Placement> {
  let shards: Record<string, string[]>;
  try {
    shards = ((await server.request({ db: name, path: '_shards' })) as { shards?: Record<string, string[]> }).shards ?? {};
  } catch (err) {
    const s = statusOf(err);
    if (s === 400 || s === 404 || s === 405) return { nodes: [], copies: 1 }; // not a cluster-capable store
    throw err;
  }
  const nodes = [...new Set(Object.values(shards).flat())].sort();
  const copies = Math.max(1, ...Object.values(shards).map((n) => n.length));
  const p: Placement = { nodes, copies };
  // several shards of one copy each are fine (a document lives in one shard); several copies are not
  if (copies > 1) {
    p.warning = `the state database ${name} keeps ${copies} copies of its documents: on a cluster two runtimes can both win a lease or a tick; recreate it with q=1, n=1 (stop the runtimes, delete it, start one runtime)`;
  }
  return p;
}

/**
 * Compacts the state database when its file is more than twice its live data (and over
 * `minBytes`), checked every `everyMs`. Where the store reports no sizes (the embedded store,
 * whose seqs are plain integers), when more than max(200, 4 × its documents) revisions were
 * written since the last compaction; failing both, every tenth check.
 */
export class StateCompactor {
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<boolean> | undefined;
  private stopped = false;
  private checks = 0;
  private compactedAt: number | undefined;
  compactions = 0;
  lastSize: number | undefined;

  constructor(
    private readonly server: ServerScope,
    private readonly db: string,
    private readonly logger: Logger,
    private readonly everyMs = 60_000,
    private readonly minBytes = 256 * 1024,
  ) {}

  start(): void {
    this.timer = setInterval(() => { this.checking ??= this.check().finally(() => { this.checking = undefined; }); }, this.everyMs);
    this.timer.unref();
  }

  /** Resolves with whether a compaction was started. */
  private seqAtCompaction: string | undefined;

  async check(): Promise<boolean> {
    this.checks++;
    try {
      const info = await dbInfo(this.server, this.db);
      const file = info.sizes?.file;
      const active = info.sizes?.active;
      this.lastSize = file;
      if (info.compact_running) return false;
      // nothing written since the last compaction: compacting again gains nothing (seqs compared for equality only)
      const seqKey = JSON.stringify(info.update_seq);
      if (seqKey === this.seqAtCompaction) return false;
      const seq = typeof info.update_seq === 'number' || /^\d+$/.test(String(info.update_seq)) ? Number(info.update_seq) : undefined;
      this.compactedAt ??= 0;
      const due = file !== undefined && active !== undefined
        ? file > this.minBytes && file > 2 * active
        : seq !== undefined
          ? seq - this.compactedAt > Math.max(200, 4 * (info.doc_count ?? 0))
          : this.checks % 10 === 0;
      if (!due) return false;
      await this.server.request({ db: this.db, path: '_compact', method: 'POST', headers: { 'content-type': 'application/json' } });
      this.compactions++;
      this.seqAtCompaction = seqKey;
      if (seq !== undefined) this.compactedAt = seq;
      this.logger.debug('state database compacted', { db: this.db, file, active });
      return true;
    } catch (err) {
      // a check cut off by the runtime stopping (its store with it) is not worth a warning
      if (this.stopped) this.logger.debug('state database check ended by stopping', { db: this.db, error: describeError(err) });
      else this.logger.warn('state database not compacted', { db: this.db, error: describeError(err) });
      return false;
    }
  }

  /** No more checks; resolves once the one in flight has ended (at most kStopWaitMs on a store that does not answer). */
  stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    return settledWithin([this.checking], kStopWaitMs);
  }
}
