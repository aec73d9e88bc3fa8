/**
 * The one place that constructs nano. Everything in LivelyCouch that talks to CouchDB (Apache
 * CouchDB 3.x or the embedded store) gets its client and store helpers from here.
 */
import nano from 'nano';
import { fetch as undiciFetch, request } from 'undici';
import { LivelyError, describeError } from '../shared/errors.ts';

export type ServerScope = nano.ServerScope;
export type DocumentScope<D = unknown> = nano.DocumentScope<D>;

/** A nano client for `url` (credentials in the URL, e.g. `http://admin:pw@127.0.0.1:5984`). */
export function connect(url: string): nano.ServerScope {
  let parsed: URL;
  try { parsed = new URL(url); } catch {
    throw new LivelyError('LC_CONFIG', `CouchDB URL is not a valid URL: ${redact(url)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new LivelyError('LC_CONFIG', `CouchDB URL must be http or https: ${redact(url)}`);
  }
  useUndiciFetch();
  return nano({ url: parsed.toString().replace(/\/$/, '') });
}

/**
 * nano sends its requests with the global `fetch`, which is node's own bundled copy of undici:
 * a second HTTP client beside the undici package the feeds and the proxy use, compiled on
 * nano's first request (about 80 ms when measured alone). So in a process
 * that uses nano the global `fetch` is the undici package's. Worker threads, isolates and process
 * workers have globals of their own and keep node's.
 */
function useUndiciFetch(): void {
  if (globalThis.fetch !== (undiciFetch as unknown)) globalThis.fetch = undiciFetch as unknown as typeof globalThis.fetch;
}

/** The URL without its password, for logs and error messages. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<invalid url>';
  }
}

/** The HTTP status of a nano error, undefined when the request never got an answer. */
/** The `Authorization: Basic …` value for the credentials a CouchDB URL carries, or undefined when it carries none. */
export function basicAuthOf(url: string | URL): string | undefined {
  const u = typeof url === 'string' ? new URL(url) : url;
  if (!u.username) return undefined;
  return `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
}

/** A CouchDB URL split in two: the URL without credentials (no trailing slash) and them as an `Authorization` value. */
export function credentialsApart(url: string | URL): { base: string; authorization?: string } {
  const u = new URL(url);
  const authorization = basicAuthOf(u);
  u.username = '';
  u.password = '';
  return { base: u.toString().replace(/\/$/, ''), ...(authorization ? { authorization } : {}) };
}

export function statusOf(err: unknown): number | undefined {
  const s = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

/** Whether a failure is the store being away (restarting, unreachable) rather than an answer. */
export function isTransient(err: unknown): boolean {
  const status = statusOf(err);
  if (status === undefined) return (err as { name?: string } | null)?.name !== 'AbortError';
  return status === 429 || status >= 500;
}

/** Creates the database unless it exists. */
export async function ensureDb(server: nano.ServerScope, name: string): Promise<void> {
  try {
    await server.db.create(name);
  } catch (err) {
    // 412: it exists (CouchDB and the embedded store agree on this one)
    if (statusOf(err) !== 412) throw err;
  }
}

export interface RetryOptions {
  /** attempts in all, the first included. */
  attempts?: number;
  /** first delay; doubled after each failure. */
  delay?: number;
  maxDelay?: number;
  signal?: AbortSignal;
}

export const kDefaultRetry = Object.freeze({ attempts: 8, delay: 100, maxDelay: 5_000 });

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(t); reject(signal!.reason); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/**
 * Runs `fn` again while the store is away (connection refused, 5xx, 429), so a call made
 * while the embedded store restarts succeeds once it is back. Any other failure is thrown
 * at once; when the attempts run out the last error becomes LC_STORE_UNAVAILABLE.
 */
export async function retry<T>(fn: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? kDefaultRetry.attempts;
  const maxDelay = options.maxDelay ?? kDefaultRetry.maxDelay;
  let delay = options.delay ?? kDefaultRetry.delay;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransient(err)) throw err;
      if (attempt >= attempts) {
        throw new LivelyError('LC_STORE_UNAVAILABLE', `CouchDB is unavailable: ${describeError(err)}`, { attempts });
      }
      await sleep(delay, options.signal);
      delay = Math.min(delay * 2, maxDelay);
    }
  }
}

export { sleep };

// Typed calls for documents of the runtime's own shapes (state, claims, leases, journals): nano
// types a database by one document type, these name the shape per call, so callers cast nothing.

/** Which database on which server: all a feed needs, whatever the database's document type. */
export type DbRef = Pick<DocumentScope<unknown>, 'config' | 'server'>;

/** A stored document: its shape with `_id` and `_rev`. */
export type Stored<T> = T & { _id: string; _rev: string };

/** One row of a `_changes` answer or feed. */
export interface ChangeRow {
  id: string;
  seq: string;
  changes: Array<{ rev: string }>;
  deleted?: boolean;
  doc?: Record<string, unknown> & { _id: string; _rev: string };
}

export interface ListRow<T> { id: string; key: string; value: { rev: string; deleted?: boolean }; doc?: Stored<T> }

/** A row of a `_bulk_docs` answer: `rev` when written, `error` when refused. */
export interface BulkRow { id: string; rev?: string; ok?: boolean; error?: string; reason?: string }

export async function getDoc<T>(db: DocumentScope<any>, id: string): Promise<Stored<T>> {
  return (await db.get(id)) as Stored<T>;
}

/** Writes one document (a `_rev` in it updates); its new rev. */
export async function putDoc(db: DocumentScope<any>, doc: object): Promise<{ id: string; rev: string }> {
  const res = await db.insert(doc);
  return { id: res.id, rev: res.rev };
}

export async function bulkDocs(db: DocumentScope<any>, docs: object[]): Promise<BulkRow[]> {
  return (await db.bulk({ docs })) as BulkRow[];
}

export async function listDocs<T>(db: DocumentScope<any>, params: { include_docs?: boolean; limit?: number; startkey?: string; endkey?: string } = {}): Promise<ListRow<T>[]> {
  return (await db.list(params)).rows as ListRow<T>[];
}

/** One `_changes` read (not a feed: see ./feed.ts). */
export async function readChanges(db: DocumentScope<any>, params: { since: string; include_docs?: boolean; limit?: number }): Promise<{ results: ChangeRow[]; last_seq: string }> {
  const res = await db.changes(params);
  return { results: res.results as ChangeRow[], last_seq: String(res.last_seq) };
}

/** Creates a database with its shard count (`q`) and copies (`n`) where the store honours them. */
export async function createDb(server: ServerScope, name: string, params: { q?: number; n?: number } = {}): Promise<void> {
  await server.db.create(name, params);
}

/** What `GET /<db>` tells; `update_seq` is a string on CouchDB, a number on the embedded store. */
export interface DbInfo { sizes?: { file?: number; active?: number }; compact_running?: boolean; update_seq?: unknown; doc_count?: number }

export async function dbInfo(server: ServerScope, name: string): Promise<DbInfo> {
  return (await server.db.get(name)) as DbInfo;
}

/** The names of the databases in [start, end]. */
export async function dbNames(server: ServerScope, start: string, end: string): Promise<string[]> {
  return (await server.request({ path: '_all_dbs', qs: { start_key: start, end_key: end } })) as string[];
}

/** Where a nano client's requests go, worked out once per client. */
const targets = new WeakMap<ServerScope, { base: string; authorization?: string }>();
function targetOf(server: ServerScope): { base: string; authorization?: string } {
  let t = targets.get(server);
  if (!t) targets.set(server, t = credentialsApart(server.config.url));
  return t;
}

/** A document id as a path segment: `_design/` and `_local/` keep their slash, as CouchDB wants. */
function docSegment(id: string): string {
  const m = /^(_design|_local)\/(.+)$/.exec(id);
  return m ? `${m[1]}/${encodeURIComponent(m[2]!)}` : encodeURIComponent(id);
}

/**
 * A request with JSON text made by the caller: a bare value, or a large body stringified once
 * (nano's own stringify walks every key with a replacer). The answer is typed by the caller.
 * These are the writes on the trigger path (activation records, the durable journal), so they
 * go straight through undici's request to the client's URL, not through nano's fetch, whose
 * Request, Headers, signal and stream objects cost more CPU than the rest of the write. A
 * failure answer is thrown as nano throws it: `statusCode`, `error` and `reason`.
 */
export async function sendJson<T = unknown>(server: ServerScope, method: 'PUT' | 'POST', at: { db: string; doc?: string; path?: string }, json: string): Promise<T> {
  const { base, authorization } = targetOf(server);
  const url = `${base}/${encodeURIComponent(at.db)}${at.doc !== undefined ? `/${docSegment(at.doc)}` : ''}${at.path ? `/${at.path}` : ''}`;
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (authorization) headers.authorization = authorization;
  const res = await request(url, { method, headers, body: json });
  const text = await res.body.text();
  let body: unknown;
  try { body = text ? JSON.parse(text) : undefined; } catch { body = undefined; }
  if (res.statusCode >= 400) {
    const { error, reason } = (body ?? {}) as { error?: unknown; reason?: unknown };
    const said = typeof reason === 'string' && reason ? reason : typeof error === 'string' && error ? error : `HTTP ${res.statusCode}`;
    throw Object.assign(new Error(said), { statusCode: res.statusCode, error, reason, description: said });
  }
  return body as T;
}
