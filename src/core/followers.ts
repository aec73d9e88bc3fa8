/**
 * The two feeds that keep the runtime's in-memory view current: the events database into the
 * catalog, the workers database into the registry and the dispatchers' instances.
 */
import { describeError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { readChanges, type DocumentScope } from '../store/couch.ts';
import { ChangesFeed } from '../store/feed.ts';
import type { WorkerRegistry } from '../workers/registry.ts';
import type { Dispatcher } from '../workers/dispatcher.ts';
import type { EventCatalog } from './event-catalog.ts';

/** Loads every event, then follows the feed from where the load ended. */
export async function followEvents(db: DocumentScope<Record<string, unknown>>, catalog: EventCatalog, logger: Logger): Promise<ChangesFeed> {
  const first = await readChanges(db, { since: '0', include_docs: true });
  catalog.apply(first.results);
  const feed = new ChangesFeed(db, {
    since: first.last_seq,
    includeDocs: true,
    logger,
    onBatch: async (rows) => { catalog.apply(rows); },
  });
  feed.on('error', (err: unknown) => logger.error('events feed stopped', { error: describeError(err) }));
  feed.start();
  return feed;
}

/** From now on, a changed worker document retires the instances of its other revisions. */
export function followWorkers(db: DocumentScope<Record<string, unknown>>, registry: WorkerRegistry, dispatchers: () => readonly Dispatcher[], logger: Logger): ChangesFeed {
  const feed = new ChangesFeed(db, {
    since: 'now',
    includeDocs: false,
    logger,
    onBatch: async (rows) => {
      for (const row of rows) {
        const rev = row.deleted ? undefined : row.changes[0]?.rev;
        registry.changed(row.id, rev);
        // Retire in every dispatcher: instances of other revisions finish, then get stdin end.
        await Promise.all(dispatchers().map((d) => d.retire(row.id, rev).catch((err) =>
          logger.warn('retiring worker failed', { worker: row.id, error: describeError(err) }))));
      }
    },
  });
  feed.on('error', (err: unknown) => logger.error('workers feed stopped', { error: describeError(err) }));
  feed.start();
  return feed;
}
