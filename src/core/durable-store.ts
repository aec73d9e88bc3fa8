/**
 * What the durable journal stores, and where: batch documents of entries in per-day
 * databases `<prefix>durable_<yyyymmdd>` (UTC), written with `_bulk_docs`.
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
  entries: DurableEntry[];
  /** activations of `entries` that finished. */
  done?: string[];
}

/** A batch this boot owns, as it stands in the store (`rev`) and in memory (`done`). */
export interface Owned {
  db: string;
  doc: JournalBatch;
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
 * A batch document in JSON, its entries given in JSON already (each was stringified once, to
 * know its size when it was accepted): the same text as `JSON.stringify(batch)`.
 */
export function batchJson(batch: Omit<JournalBatch, 'entries'>, entries: readonly string[]): string {
  const head = JSON.stringify(batch);
  return `${head.slice(0, -1)}${head.length > 2 ? ',' : ''}"entries":[${entries.join(',')}]}`;
}
