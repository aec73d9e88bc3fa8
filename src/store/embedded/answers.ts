/**
 * What the embedded store answers where express-pouchdb would answer otherwise than Apache
 * CouchDB 3.5 (the welcome, JSON bodies whatever the content type and 415s, CouchDB's 400s and
 * 409s, `_bulk_get` refusals, CouchDB's wording): spec/store/conformance.spec.ts checks each
 * against a real CouchDB; docs/stores.md lists them.
 */
import { randomUUID } from 'node:crypto';

export class HttpError extends Error {
  constructor(readonly status: number, readonly error: string, reason: string) {
    super(reason);
  }
}

/** The CouchDB release whose HTTP API the embedded store answers as. */
export const kCouchVersion = '3.5.0';

export function welcome(uuid: string): Record<string, unknown> {
  return {
    couchdb: 'Welcome',
    version: kCouchVersion,
    uuid,
    features: [],
    vendor: { name: 'LivelyCouch embedded store' },
  };
}

export function newServerUuid(): string {
  return randomUUID().replace(/-/g, '');
}

/** POSTs CouchDB answers with 415 unless their body is JSON. */
const kJsonPosts = new Set(['_bulk_docs', '_all_docs', '_find', '_bulk_get', '_index', '_explain', '_revs_diff', '_missing_revs', '_changes', '_design_docs', '_local_docs', '_purge', '_compact', '_view_cleanup', '_ensure_full_commit']);

/** Whether a POST must carry a JSON body: POST /db, /db/_bulk_docs and the like, a view query, /_dbs_info. */
export function isJsonPost(segments: string[]): boolean {
  if (segments.length === 0) return false;
  if (segments[0] === '_dbs_info' || segments[0] === '_all_dbs') return segments.length === 1;
  if (segments[0]!.startsWith('_')) return false;
  if (segments.length === 1) return true;
  if (segments.length === 2) return kJsonPosts.has(segments[1]!);
  return segments[1] === '_design' && segments.length === 5 && segments[3] === '_view';
}

/** A document PUT (PUT /db/doc, /db/_design/doc, /db/_local/doc), and PUT /db/_security. */
export function isDocumentPut(segments: string[]): boolean {
  if (segments.length === 0 || segments[0]!.startsWith('_')) return false;
  if (segments.length === 2) return !segments[1]!.startsWith('_') || segments[1] === '_security';
  return segments.length === 3 && (segments[1] === '_design' || segments[1] === '_local');
}

export function isJsonContentType(contentType: string): boolean {
  return /^application\/json\s*(;|$)/i.test(contentType);
}

/** A document body as CouchDB reads it, whatever its content type; `sent`: the request said it has one. */
export function parseDocumentBody(buf: Buffer, sent: boolean): unknown {
  if (buf.length === 0 && !sent) throw new HttpError(400, 'bad_request', 'Missing request body');
  try { return JSON.parse(buf.toString('utf8')); } catch {
    throw new HttpError(400, 'bad_request', 'invalid UTF-8 JSON');
  }
}

const kJsonParams = ['key', 'keys', 'startkey', 'endkey', 'start_key', 'end_key', 'startkey_docid'];
const kIntParams = ['limit', 'skip'];
const kRev = /^\d+-[0-9a-f]+$/i;

/** CouchDB's 400s for query values it cannot read: on documents, `_all_docs` and views. */
export function checkQuery(method: string | undefined, segments: string[], query: URLSearchParams): void {
  if (segments.length < 2 || segments[0]!.startsWith('_')) return;
  const view = segments[1] === '_all_docs' || segments[1] === '_design_docs' || (segments[1] === '_design' && segments[3] === '_view');
  if (view) {
    for (const p of kIntParams) {
      const v = query.get(p);
      if (v !== null && !/^\d+$/.test(v)) throw new HttpError(400, 'query_parse_error', `Invalid value for integer: ${JSON.stringify(v)}`);
    }
    for (const p of kJsonParams) {
      const v = query.get(p);
      if (v !== null && p !== 'startkey_docid') {
        try { JSON.parse(v); } catch { throw new HttpError(400, 'bad_request', 'invalid UTF-8 JSON'); }
      }
    }
    return;
  }
  const doc = !segments[1]!.startsWith('_') || (segments.length === 3 && (segments[1] === '_design' || segments[1] === '_local'));
  if (!doc || (method !== 'GET' && method !== 'HEAD')) return;
  const rev = query.get('rev');
  if (rev !== null && !kRev.test(rev)) throw new HttpError(400, 'bad_request', 'Invalid rev format');
  const openRevs = query.get('open_revs');
  if (openRevs !== null && openRevs !== 'all') {
    let revs: unknown;
    try { revs = JSON.parse(openRevs); } catch { throw new HttpError(400, 'bad_request', 'invalid UTF-8 JSON'); }
    if (!Array.isArray(revs)) throw new HttpError(400, 'bad_request', 'Invalid list of revisions');
    if (!revs.every((r) => typeof r === 'string' && kRev.test(r))) throw new HttpError(400, 'bad_request', 'Invalid rev format');
  }
}

/**
 * A `_bulk_get` body CouchDB would refuse: without `docs` (400), with `docs` not a list of
 * objects naming an `id` (CouchDB's own 500, `function_clause`).
 */
export function checkBulkGet(body: Record<string, unknown>): void {
  const docs = body.docs;
  if (docs === undefined) throw new HttpError(400, 'bad_request', "Missing JSON list of 'docs'.");
  if (!Array.isArray(docs) || !docs.every((d) => typeof d === 'object' && d !== null && !Array.isArray(d) && typeof (d as { id?: unknown }).id === 'string')) {
    throw new HttpError(500, 'unknown_error', 'function_clause');
  }
}

/** CouchDB's 409 for a DELETE of a document that names no revision (PouchDB deletes the latest). */
export function checkDelete(method: string | undefined, segments: string[], query: URLSearchParams, ifMatch: string | undefined): void {
  if (method !== 'DELETE' || segments.length < 2 || segments[0]!.startsWith('_')) return;
  const doc = (segments.length === 2 && !segments[1]!.startsWith('_')) || (segments.length === 3 && (segments[1] === '_design' || segments[1] === '_local'));
  if (doc && !query.has('rev') && ifMatch === undefined) throw new HttpError(409, 'conflict', 'Document update conflict.');
}

/** An express-pouchdb answer in CouchDB's words; `url`: the request's. */
export function couchBody(body: unknown, url = ''): unknown {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return body;
  const b = body as { error?: unknown; reason?: unknown; info?: Record<string, unknown>; offset?: unknown; rows?: unknown };
  // CouchDB 3.5's _session names no authentication_db
  if (b.info !== undefined && 'authentication_db' in b.info && 'userCtx' in body) {
    const { authentication_db: _, ...info } = b.info;
    return { ...body, info };
  }
  // asked for by keys, CouchDB's _all_docs has no offset
  if (Array.isArray(b.rows) && typeof b.offset === 'number' && /\/_all_docs(\?|$)/.test(url) && (/[?&]keys=/.test(url) || /^POST /.test(url))) {
    return { ...body, offset: null };
  }
  if (b.error === 'conflict' && b.reason === 'Document update conflict') return { error: 'conflict', reason: 'Document update conflict.' };
  if (b.error === 'not_found' && b.reason === 'no_db_file') return { error: 'not_found', reason: 'Database does not exist.' };
  if (b.error === 'bad_request' && b.reason === 'Only reserved document ids may start with underscore.') return { error: 'illegal_docid', reason: b.reason };
  if (b.error === 'bad_request' && b.reason === "Missing JSON list of 'docs'") return { error: 'bad_request', reason: 'POST body must include `docs` parameter.' };
  return body;
}
