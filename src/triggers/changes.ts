/**
 * Changes triggers: `{ "changes": { "db": "inbox", "selector": {…}, "include_docs": true } }`
 * fires the event once per change of that database. Each trigger keeps a checkpoint in a
 * `_local` document of the logs database, as CouchDB replication does, written only after
 * the batch's workers have finished: after a crash or restart the batch is replayed, so
 * nothing is missed (at-least-once). A new trigger starts at the database's current seq.
 */
import { createHash } from 'node:crypto';
import type { DocumentScope, ServerScope } from 'nano';
import type { ChangesTrigger, EventDef } from '../events/model.ts';
import { ChangesFeed, type ChangeRow } from '../store/changes.ts';
import type { Logger } from '../shared/log.ts';
import { describeError } from '../shared/errors.ts';

export interface ChangesTriggerOptions {
  server: ServerScope;
  /** where checkpoints live (`_local/changes-…`). */
  checkpoints: DocumentScope<unknown>;
  /** fires the event for one change; resolves when its workers are done. */
  fire: (event: EventDef, change: ChangeRow, db: string) => Promise<void>;
  logger: Logger;
}

interface Running { key: string; feed: ChangesFeed }

export class ChangesTriggers {
  private readonly running = new Map<string, Running[]>();
  private readonly latest = new Map<string, EventDef | undefined>();
  private readonly chains = new Map<string, Promise<void>>();
  private closed = false;

  constructor(private readonly opts: ChangesTriggerOptions) {}

  /**
   * Reconciles one event's feeds with its current definition. Calls for one event run one
   * after another; a trigger that cannot start (its database is missing, the store is away)
   * is retried with backoff for as long as the event stays as it is.
   */
  set(id: string, event: EventDef | undefined): Promise<void> {
    this.latest.set(id, event);
    const next = (this.chains.get(id) ?? Promise.resolve()).then(() => this.reconcile(id, event));
    this.chains.set(id, next.catch(() => undefined));
    return next;
  }

  private async reconcile(id: string, event: EventDef | undefined, attempt = 0): Promise<void> {
    if (this.latest.get(id) !== event || this.closed) return; // a newer definition is queued
    const wanted = !event || event.disabled ? [] : event.triggers.filter((t): t is ChangesTrigger => t.kind === 'changes');
    const keys = wanted.map((t) => `${id}:${digest(t)}`);
    const current = this.running.get(id) ?? [];
    if (current.length === keys.length && current.every((r, i) => r.key === keys[i])) {
      return; // same triggers: keep the feeds (and their positions) running
    }
    await Promise.all(current.map((r) => r.feed.stop()));
    this.running.delete(id);
    if (!event || wanted.length === 0) { this.latest.delete(id); return; }
    const started: Running[] = [];
    this.running.set(id, started);
    for (let i = 0; i < wanted.length; i++) {
      try {
        started.push({ key: keys[i]!, feed: await this.start(event, wanted[i]!, keys[i]!) });
      } catch (err) {
        const delay = Math.min(60_000, 1_000 * 2 ** attempt);
        this.opts.logger.warn('changes trigger not started; retrying', { event: id, db: wanted[i]!.db, error: describeError(err), in: delay });
        const t = setTimeout(() => {
          this.chains.set(id, (this.chains.get(id) ?? Promise.resolve()).then(() => this.reconcile(id, event, attempt + 1)).catch(() => undefined));
        }, delay);
        t.unref();
        return;
      }
    }
  }

  private async start(event: EventDef, trigger: ChangesTrigger, key: string): Promise<ChangesFeed> {
    const db = this.opts.server.use(trigger.db);
    const checkpointId = `_local/changes-${createHash('sha1').update(key).digest('hex')}`;
    let since: string;
    let rev: string | undefined;
    try {
      const cp = (await this.opts.checkpoints.get(checkpointId)) as unknown as { _rev: string; seq: string };
      since = cp.seq;
      rev = cp._rev;
    } catch (err) {
      // Only a missing checkpoint means a first start; anything else must not skip changes.
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
      // First start: from now on, remembered at once so a restart before the first change misses nothing.
      since = String((await db.info()).update_seq);
      rev = (await this.opts.checkpoints.insert({ _id: checkpointId, seq: since, event: event.id, db: trigger.db } as never)).rev;
    }
    const feed = new ChangesFeed(db as DocumentScope<unknown>, {
      since,
      includeDocs: trigger.includeDocs,
      selector: trigger.selector,
      logger: this.opts.logger,
      onBatch: async (rows) => {
        for (const row of rows) await this.opts.fire(event, row, trigger.db);
      },
      checkpoint: async (seq) => {
        const res = await this.opts.checkpoints.insert({ _id: checkpointId, _rev: rev, seq, event: event.id, db: trigger.db } as never);
        rev = res.rev;
      },
    });
    feed.on('error', (err: unknown) => this.opts.logger.error('changes trigger stopped', { event: event.id, db: trigger.db, error: describeError(err) }));
    feed.start();
    return feed;
  }

  /** How many feeds of this event are running (status, specs). */
  feeds(id: string): number {
    return this.running.get(id)?.length ?? 0;
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.running.values()].flat();
    this.running.clear();
    await Promise.all(all.map((r) => r.feed.stop()));
  }
}

function digest(t: ChangesTrigger): string {
  return createHash('sha1').update(JSON.stringify([t.db, t.selector ?? null, t.includeDocs])).digest('hex').slice(0, 12);
}
