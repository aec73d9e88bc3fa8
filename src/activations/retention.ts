/**
 * Retention of activation records, by age and by count, without tombstones building up.
 *
 * Deleting a CouchDB document leaves a tombstone that `_all_docs` skips but the database keeps
 * (and replicates) for ever; deleting a day's records one by one would grow a database that
 * never shrinks. So age retention drops whole day databases, and the count limit drops the
 * oldest days, then deletes the oldest batches of the oldest day still kept: those tombstones
 * live only until that day is dropped in turn, which age retention guarantees.
 *
 * A day's record count comes from its batch ids (each names its record count), read once
 * per change of the database (its update_seq), so an hourly run reads little besides today.
 */
import { parseBatchId, kDayMs } from './batch.ts';
import { dropDayDb, listDayDbs } from './record-days.ts';
import { statusOf, type ServerScope } from '../store/couch.ts';

export interface PruneResult {
  /** day databases dropped, by age or by count. */
  droppedDays: string[];
  /** batches deleted within the oldest day kept, and the records they held. */
  deletedBatches: number;
  deletedRecords: number;
  /** documents of earlier versions deleted from `<prefix>logs` by age. */
  legacyDeleted: number;
}

/** day database → its record count as of an update_seq. */
export type DayCounts = Map<string, { seq: string; count: number }>;

export interface PruneOptions {
  now: number;
  retentionDays: number;
  maxRecords: number;
  counts: DayCounts;
}

const kIdPage = 5_000;

export async function pruneActivations(server: ServerScope, prefix: string, o: PruneOptions): Promise<PruneResult> {
  const result: PruneResult = { droppedDays: [], deletedBatches: 0, deletedRecords: 0, legacyDeleted: 0 };
  result.legacyDeleted = await pruneLegacy(server, `${prefix}logs`, o.now - o.retentionDays * kDayMs);
  const cutoff = o.now - o.retentionDays * kDayMs;
  const kept: string[] = [];
  for (const day of await listDayDbs(server, prefix)) {
    // A day goes when all of it is past the retention period.
    if (day.start + kDayMs <= cutoff) {
      await dropDayDb(server, day.name);
      result.droppedDays.push(day.name);
      o.counts.delete(day.name);
    } else {
      kept.push(day.name);
    }
  }
  let total = 0;
  for (let i = 0; i < kept.length; i++) {
    const name = kept[i]!;
    const count = await dayCount(server, name, o.counts);
    total += count;
    if (total <= o.maxRecords) continue;
    // This day crosses the limit: older days go whole, this one loses its oldest batches.
    for (const older of kept.slice(i + 1)) {
      await dropDayDb(server, older);
      result.droppedDays.push(older);
      o.counts.delete(older);
    }
    const { batches, records, dropped } = await deleteOldest(server, name, total - o.maxRecords);
    if (dropped) result.droppedDays.push(name);
    result.deletedBatches += batches;
    result.deletedRecords += records;
    o.counts.delete(name);
    break;
  }
  return result;
}

async function dayCount(server: ServerScope, name: string, counts: DayCounts): Promise<number> {
  const info = await server.db.get(name);
  const seq = JSON.stringify(info.update_seq);
  const cached = counts.get(name);
  if (cached && cached.seq === seq) return cached.count;
  const db = server.use(name);
  let count = 0;
  let startkey: string | undefined;
  for (;;) {
    const page = await db.list({ limit: kIdPage, ...(startkey !== undefined ? { startkey, skip: 1 } : {}) });
    for (const row of page.rows) count += parseBatchId(row.id)?.count ?? 0;
    if (page.rows.length < kIdPage) break;
    startkey = page.rows[page.rows.length - 1]!.id;
  }
  counts.set(name, { seq, count });
  return count;
}

/**
 * Deletes the oldest batches of a day until at least `excess` records are gone; when that
 * would leave nothing, drops the database instead (no tombstones at all).
 */
async function deleteOldest(server: ServerScope, name: string, excess: number): Promise<{ batches: number; records: number; dropped: boolean }> {
  const db = server.use(name);
  const docs: Array<{ _id: string; _rev: string; _deleted: true }> = [];
  let records = 0;
  let remains = false;
  let startkey: string | undefined;
  while (!remains) {
    const page = await db.list({ limit: kIdPage, ...(startkey !== undefined ? { startkey, skip: 1 } : {}) });
    for (const row of page.rows) {
      const ref = parseBatchId(row.id);
      if (!ref) continue;
      if (records >= excess) { remains = true; break; }
      docs.push({ _id: row.id, _rev: row.value.rev, _deleted: true });
      records += ref.count;
    }
    if (page.rows.length < kIdPage) break;
    startkey = page.rows[page.rows.length - 1]!.id;
  }
  if (!remains) {
    await dropDayDb(server, name);
    return { batches: 0, records: 0, dropped: true };
  }
  for (let i = 0; i < docs.length; i += 1_000) await db.bulk({ docs: docs.slice(i, i + 1_000) });
  return { batches: docs.length, records, dropped: false };
}

/**
 * `<prefix>logs` keeps runtime state; documents there whose id starts with their ISO time
 * (activation batches of earlier versions, schedule tick claims) go after the retention period.
 */
async function pruneLegacy(server: ServerScope, name: string, cutoff: number): Promise<number> {
  const db = server.use(name);
  const end = new Date(cutoff).toISOString();
  let deleted = 0;
  for (;;) {
    let page;
    try {
      page = await db.list({ startkey: '0', endkey: end, limit: 1000 });
    } catch (err) {
      if (statusOf(err) === 404) return deleted; // not initialised: nothing kept there
      throw err;
    }
    const docs = page.rows.filter((r) => !r.id.startsWith('_')).map((r) => ({ _id: r.id, _rev: r.value.rev, _deleted: true }));
    if (docs.length === 0) return deleted;
    await db.bulk({ docs });
    deleted += docs.length;
  }
}
