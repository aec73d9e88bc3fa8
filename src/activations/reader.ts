/**
 * Reading activation records back: one by id, and pages of them newest first (by start time,
 * then activation id), filtered, with an opaque cursor.
 *
 * No view is needed. A record's batch started at most kBatchSpanMs before it, on its day, and
 * batch ids say when each batch started and ended (./batch.ts). So an id lookup reads the
 * few batch ids of a few seconds of one day database and fetches the batch that covers the
 * activation's start time (which its id carries). A page walks batch ids newest first and
 * fetches batches in order of their latest start: a record is safe to return once no batch
 * left unread can hold a newer one. The cursor is the last record returned (started,
 * activation), so pages neither repeat nor skip records across batches and days.
 */
import { LivelyError } from '../shared/errors.ts';
import { statusOf, type ServerScope } from '../store/couch.ts';
import type { ActivationStatus } from '../shared/message.ts';
import { batchIdPrefix, decodeBatch, expandAt, kBatchSpanMs, kDayMs, matchesAt, parseBatchId, type BatchDoc, type BatchRef, type StoredBatch, type RecordFilter } from './batch.ts';
import { dayDbName, listDayDbs } from './record-days.ts';
import type { ActivationRecord } from './record.ts';

export interface ActivationQuery {
  event?: string;
  worker?: string;
  status?: ActivationStatus | 'dead';
  /** started at or after (ms since the epoch). */
  since?: number;
  limit: number;
  /** `next` of the previous page. */
  before?: string;
}

export interface ActivationPage {
  activations: ActivationRecord[];
  /** absent when there are no more. */
  next?: string;
}

/** Batch ids listed per request. */
const kIdPage = 200;
/** Batches fetched per request at most: each may hold thousands of records. The first request of a page fetches one, then two, four… */
const kFetch = 8;
/**
 * Work one page may do before it answers with what it has (maybe fewer records than asked
 * for, maybe none) and a cursor to go on from: a filter that matches nothing must not read a
 * week of records in one request.
 */
export interface PageBudget {
  /** batch documents read. */
  batches: number;
  /** records looked at in them. */
  records: number;
}
export const kDefaultPageBudget: Readonly<PageBudget> = Object.freeze({ batches: 256, records: 50_000 });
const kMaxListed = 20_000;
/** How far a record's start may lie after the time in its activation id. */
const kIdSlopMs = 1_000;

interface Key { started: number; activation: string }
interface Hit extends Key { doc: BatchDoc; i: number }
interface Ref extends BatchRef { db: string }

/** Newest first: later start, then greater activation id. */
function newerFirst(a: Key, b: Key): number {
  return b.started - a.started || (a.activation < b.activation ? 1 : a.activation > b.activation ? -1 : 0);
}

function isBefore(k: Key, cursor: Key): boolean {
  return k.started < cursor.started || (k.started === cursor.started && k.activation < cursor.activation);
}

export function encodeCursor(k: Key): string {
  return Buffer.from(JSON.stringify([k.started, k.activation])).toString('base64url');
}

export function decodeCursor(s: string): Key {
  let v: unknown;
  try { v = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')); } catch { v = undefined; }
  if (!Array.isArray(v) || v.length !== 2 || !Number.isSafeInteger(v[0]) || typeof v[1] !== 'string') {
    throw new LivelyError('LC_BAD_REQUEST', 'before must be the "next" value of a previous page');
  }
  return { started: v[0] as number, activation: v[1] as string };
}

async function fetchBatches(server: ServerScope, refs: Ref[]): Promise<BatchDoc[]> {
  const byDb = new Map<string, string[]>();
  for (const r of refs) {
    const ids = byDb.get(r.db);
    if (ids) ids.push(r.id); else byDb.set(r.db, [r.id]);
  }
  const out: BatchDoc[] = [];
  for (const [db, keys] of byDb) {
    let res;
    try {
      res = await server.use(db).fetch({ keys });
    } catch (err) {
      if (statusOf(err) === 404) continue; // the day was dropped meanwhile
      throw err;
    }
    for (const row of res.rows) {
      const doc = (row as { doc?: BatchDoc | StoredBatch | null }).doc;
      if (doc && doc.type === 'activations') out.push(decodeBatch(doc));
    }
  }
  return out;
}

export async function listActivations(server: ServerScope, prefix: string, q: ActivationQuery, budget: Readonly<PageBudget> = kDefaultPageBudget): Promise<ActivationPage> {
  const cursor = q.before === undefined ? undefined : decodeCursor(q.before);
  const since = q.since ?? -Infinity;
  const filter: RecordFilter = q;
  const top = cursor ? cursor.started : Infinity;
  const days = (await listDayDbs(server, prefix)).filter((d) => d.start <= top && d.start + kDayMs > since);

  let dayIdx = 0;
  let startkey: string | undefined = cursor ? `${batchIdPrefix(cursor.started)}\ufff0` : undefined;
  let skip = false;
  /** the latest start any batch not yet listed can hold. */
  let frontier = days.length > 0 ? Infinity : -Infinity;
  const unread: Ref[] = [];
  let hits: Hit[] = [];
  let fetched = 0;
  let fetchSize = 1;
  let scanned = 0;
  let listed = 0;
  let threshold: number;
  let exhausted = false;

  for (;;) {
    let unreadMax = -Infinity;
    for (const r of unread) if (r.hi > unreadMax) unreadMax = r.hi;
    // Records started after this are all among the hits already.
    threshold = Math.max(frontier, unreadMax);
    if (threshold === -Infinity) { exhausted = true; break; }
    let safe = 0;
    for (const h of hits) if (h.started > threshold) safe++;
    if (safe > q.limit) break;
    // Out of budget: stop, if the cursor handed back moves on from the one given.
    if ((fetched >= budget.batches || scanned >= budget.records || listed >= kMaxListed)
      && (!cursor || isBefore({ started: threshold + 1, activation: '' }, cursor))) break;

    if (unread.length > 0 && unreadMax >= frontier) {
      unread.sort((a, b) => b.hi - a.hi);
      const take = unread.splice(0, Math.min(fetchSize, unread.length));
      fetchSize = Math.min(kFetch, fetchSize * 2);
      fetched += take.length;
      for (const doc of await fetchBatches(server, take)) {
        scanned += doc.count;
        for (let i = 0; i < doc.count; i++) {
          const k: Key = { started: doc.started[i]!, activation: doc.activation[i]! };
          if (cursor && !isBefore(k, cursor)) continue;
          if (!matchesAt(doc, i, filter)) continue;
          hits.push({ started: k.started, activation: k.activation, doc, i });
        }
      }
      // Only the newest limit+1 can be on this page (or tell that there is a next one).
      if (hits.length > q.limit + 1) hits = hits.sort(newerFirst).slice(0, q.limit + 1);
      continue;
    }

    const day = days[dayIdx]!;
    let rows: Array<{ id: string }>;
    try {
      rows = (await server.use(day.name).list({
        descending: true, limit: kIdPage, ...(startkey !== undefined ? { startkey } : {}), ...(skip ? { skip: 1 } : {}),
      })).rows;
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
      rows = []; // dropped meanwhile
    }
    listed += rows.length;
    let lastLo = Infinity;
    for (const row of rows) {
      const ref = parseBatchId(row.id);
      if (!ref) continue;
      lastLo = Math.min(lastLo, ref.lo);
      if (ref.hi >= since) unread.push({ ...ref, db: day.name });
    }
    if (rows.length < kIdPage) {
      dayIdx++;
      startkey = undefined;
      skip = false;
      frontier = dayIdx < days.length ? day.start - 1 : -Infinity;
    } else {
      startkey = rows[rows.length - 1]!.id;
      skip = true;
      if (lastLo !== Infinity) frontier = Math.min(frontier, lastLo + kBatchSpanMs);
    }
    if (frontier < since) frontier = -Infinity;
  }

  hits.sort(newerFirst);
  let page: Hit[];
  let next: string | undefined;
  if (exhausted) {
    page = hits.slice(0, q.limit);
    if (hits.length > q.limit) next = encodeCursor(page[page.length - 1]!);
  } else {
    const safe = hits.filter((h) => h.started > threshold);
    page = safe.slice(0, q.limit);
    // Either a full page with more behind it, or the work limit was reached: go on from
    // the last record returned, or from the start time everything newer was read to.
    next = safe.length > q.limit ? encodeCursor(page[page.length - 1]!) : encodeCursor({ started: threshold + 1, activation: '' });
  }
  return { activations: page.map((h) => expandAt(h.doc, h.i)), ...(next !== undefined ? { next } : {}) };
}

/** The start time an activation id carries (`<boot>-<ms base 36>-<n>`), if it carries one. */
export function activationTime(id: string): number | undefined {
  const parts = id.split('-');
  if (parts.length < 3 || !/^[0-9a-z]{1,11}$/.test(parts[1]!)) return undefined;
  const t = parseInt(parts[1]!, 36);
  return Number.isSafeInteger(t) && t > 0 ? t : undefined;
}

export async function getActivation(server: ServerScope, prefix: string, id: string): Promise<ActivationRecord | undefined> {
  const t = activationTime(id);
  if (t === undefined) return undefined;
  const dbs = [...new Set([dayDbName(prefix, t), dayDbName(prefix, t + kIdSlopMs)])];
  for (const name of dbs) {
    let rows: Array<{ id: string }>;
    try {
      rows = (await server.use(name).list({
        startkey: batchIdPrefix(t - kBatchSpanMs),
        endkey: `${batchIdPrefix(t + kIdSlopMs)}\ufff0`,
      })).rows;
    } catch (err) {
      if (statusOf(err) === 404) continue;
      throw err;
    }
    const refs: Ref[] = [];
    for (const row of rows) {
      const ref = parseBatchId(row.id);
      if (ref && ref.hi >= t && ref.lo <= t + kIdSlopMs) refs.push({ ...ref, db: name });
    }
    for (let i = 0; i < refs.length; i += kFetch) {
      for (const doc of await fetchBatches(server, refs.slice(i, i + kFetch))) {
        const at = doc.activation.indexOf(id);
        if (at !== -1) return expandAt(doc, at);
      }
    }
  }
  return undefined;
}
