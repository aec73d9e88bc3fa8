/**
 * What the durable journal stores, and where: batch documents of entries in per-day
 * databases `<prefix>durable_<yyyymmdd>` (UTC), written with `_bulk_docs`. A batch keeps its
 * entries as one JSON text (`entriesJson`): the store takes in one string rather than every
 * field of every entry, which it would parse, copy and hash one by one (a third to a half of
 * its CPU per journal write, docs/benchmarks.md). Batches with an `entries` array, as earlier
 * versions wrote them, are read too.
 */
import { sendJson, type ServerScope } from '../store/couch.ts';
import type { HttpRequestPart } from '../shared/message.ts';
import { DayDbs } from '../store/days.ts';

/** What a durable activation needs to run again. */
export interface DurableEntry {
  activation: string;
  method: string;
  path: string;
  params: Record<string, unknown>;
  /** the request without its credentials. */
  request?: HttpRequestPart;
  /** the events it fired, with what their triggers bound. */
  events: Array<{ id: string; bindings: Record<string, unknown> }>;
}

/** Where an entry is stored: its day's database, its batch document, its activation. */
export interface DurableRef {
  db: string;
  batch: string;
  activation: string;
}

/** One group-committed write of accepted entries. */
export interface JournalBatch {
  _id: string;
  _rev?: string;
  type: 'durable';
  owner: string;
  accepted: number;
  claimed?: number;
  /** the entries, as the JSON text of their array. */
  entriesJson?: string;
  /** the entries, in a batch an earlier version wrote. */
  entries?: DurableEntry[];
  /** activations of the entries that finished. */
  done?: string[];
}

/** The entries of a stored batch, in either form; undefined when it has none that can be read. */
export function batchEntries(doc: JournalBatch): DurableEntry[] | undefined {
  if (Array.isArray(doc.entries)) return doc.entries;
  if (typeof doc.entriesJson !== 'string') return undefined;
  let entries: unknown;
  try { entries = JSON.parse(doc.entriesJson); } catch { return undefined; }
  return Array.isArray(entries) ? entries as DurableEntry[] : undefined;
}

/** A batch this boot owns, as it stands in the store (`rev`) and in memory (`done`). */
export interface Owned {
  db: string;
  /** as last written; a batch this boot wrote holds its entries in `literal` until a rewrite needs them. */
  doc: JournalBatch;
  /** `doc.entriesJson` as the JSON string literal it was written as: parsed only for a rewrite with its `done` list, which most batches never get. */
  literal?: string;
  /** entries in the batch. */
  count: number;
  done: Set<string>;
  /** `done` has grown since the last write. */
  dirty: boolean;
  /** when the batch was last written (ms since the epoch). */
  writtenAt: number;
  /** a write of it is under way (a second one would conflict with it). */
  writing?: boolean;
}

export interface BulkRow { id?: string; rev?: string; error?: string; reason?: string }

/** The journal's day databases, `<prefix>durable_<yyyymmdd>`. */
export const journalDays = (prefix: string) => new DayDbs(`${prefix}durable_`);

/** `<prefix>durable_<yyyymmdd>` for the UTC day of `at`. */
export function journalDbName(prefix: string, at: number): string {
  return journalDays(prefix).name(at);
}

/** `_bulk_docs`, by document id (a write never holds one id twice); stringified here, once: nano's own stringify walks every key with a replacer. */
export async function bulk(server: ServerScope, db: string, docs: unknown[]): Promise<Map<string | undefined, BulkRow>> {
  return bulkJson(server, db, JSON.stringify({ docs }));
}

/** `_bulk_docs` of a body already in JSON (`{"docs":[…]}`), by document id. */
export async function bulkJson(server: ServerScope, db: string, json: string): Promise<Map<string | undefined, BulkRow>> {
  const rows = await sendJson<BulkRow[]>(server, 'POST', { db, path: '_bulk_docs' }, json);
  return new Map(rows.map((r) => [r.id, r]));
}

/**
 * The JSON string literal of a batch's `entriesJson`, from each entry's JSON as a string literal
 * already (`JSON.stringify(JSON.stringify(entry))`, made once, when the entry was accepted, to
 * know its stored size): escaping is per character, so the pieces join without escaping the
 * whole again. The same text as `JSON.stringify(JSON.stringify(entries))`.
 */
export function entriesLiteral(quoted: readonly string[]): string {
  let out = '"[';
  for (let i = 0; i < quoted.length; i++) out += (i === 0 ? '' : ',') + quoted[i]!.slice(1, -1);
  return `${out}]"`;
}
