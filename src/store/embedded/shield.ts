/**
 * LivelyCouch's middleware in front of express-pouchdb, which is unmaintained and takes its
 * process down on some requests: the shield answers those as CouchDB 3 does before they reach
 * it — multipart document PUTs, `_selector` filters, JSON (never HTML) errors, admin-only
 * database create/delete, `_changes` timeouts, heartbeats and event streams (./feeds.ts),
 * `/_node/<node>/_config`, and `_security` on every route (./access.ts). docs/stores.md lists
 * each difference it closes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { kDatabaseNamePattern } from '../../shared/db-name.ts';
import { multipartToDocument, MultipartError } from './multipart.ts';
import { kMissingEnd, parseReplicateBody, replicationReply, type Replicator } from './replicate.ts';
import { HttpError, checkBulkGet, checkDelete, checkQuery, isDocumentPut, isJsonContentType, isJsonPost, parseDocumentBody, welcome } from './answers.ts';
import { Lockout, basicNameOf, kLockedOut, peerOf } from './lockout.ts';
import { asEventSource, endAtLimit, endIdleFeed, feedStats, feedTimeout, normalizeHeartbeat, tieLiveFeed } from './feeds.ts';
import { readAheadStats } from './read-ahead.ts';
import { bodyWritesSecurityDoc, checkAccess, writesSecurityDoc, type AccessOptions } from './access.ts';
import type { DirectBulk } from './direct-bulk.ts';

/** The body limit for requests the shield has to read itself (document uploads). */
const kMaxBody = 256 * 1024 * 1024;

type ExpressApp = (req: IncomingMessage, res: ServerResponse, done: (err?: unknown) => void) => void;
type ShieldedRequest = IncomingMessage & { body?: unknown; _body?: boolean };


export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'must-revalidate' });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > kMaxBody) {
        reject(new HttpError(413, 'too_large', 'the request entity is too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function isJsonObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseJsonBody(buf: Buffer): Record<string, unknown> {
  if (buf.length === 0) return {};
  let v: unknown;
  try { v = JSON.parse(buf.toString('utf8')); } catch {
    throw new HttpError(400, 'bad_request', 'invalid_json');
  }
  if (!isJsonObject(v)) throw new HttpError(400, 'bad_request', 'Request body must be a JSON object');
  return v;
}

/**
 * Apache CouchDB 3's default `max_document_size`: a document whose body (without its
 * attachments) is larger is refused with 413 `document_too_large`. express-pouchdb has no such
 * limit, and code that works against the embedded store must not fail against CouchDB.
 */
const kMaxDocumentSize = 8_000_000;

/**
 * Throws CouchDB's 413 when a document's body, attachments aside, is over kMaxDocumentSize;
 * its reason is the document's id (empty from _bulk_docs, as CouchDB's).
 */
function checkDocumentSize(doc: unknown, reason: string): void {
  if (!isJsonObject(doc)) return;
  const { _attachments: _a, ...body } = doc;
  if (Buffer.byteLength(JSON.stringify(body)) > kMaxDocumentSize) throw new HttpError(413, 'document_too_large', reason);
}

/**
 * A JSON document write (PUT /db/doc, POST /db) whose body could be over kMaxDocumentSize is
 * read and checked here, then handed on parsed; a smaller one is not read. A `_bulk_docs` body
 * is always read here (and not again by express-pouchdb): besides the size of each document,
 * `docs` must be an array of JSON objects, which PouchDB fails on with a 500 where CouchDB
 * answers 400, in these words.
 */
async function checkJsonWrite(req: ShieldedRequest, segments: string[], inspectIds: boolean): Promise<void> {
  const bulk = segments[1] === '_bulk_docs';
  const length = Number(req.headers['content-length']);
  const small = Number.isFinite(length) && length <= kMaxDocumentSize;
  // a POST names its document's id in the body: read to see it is not `_local/_security`
  if (!bulk && small && !(inspectIds && segments.length === 1)) return;
  const body = parseJsonBody(await readBody(req));
  if (bodyWritesSecurityDoc(body)) throw new HttpError(403, 'forbidden', kSecurityDocReason);
  if (bulk) {
    const docs = (body as { docs?: unknown }).docs;
    // without docs at all: express-pouchdb's own 400
    if (docs !== undefined && !Array.isArray(docs)) throw new HttpError(400, 'bad_request', '`docs` parameter must be an array.');
    if (Array.isArray(docs)) {
      if (!docs.every(isJsonObject)) throw new HttpError(400, 'bad_request', 'Document must be a JSON object');
      if (!small) for (const d of docs) checkDocumentSize(d, '');
    }
  } else {
    checkDocumentSize(body, segments.length >= 2 ? decodeURIComponent(segments.slice(1).join('/')) : String(body._id ?? ''));
  }
  setParsedBody(req, body);
}

const kSecurityDocReason = 'on this store _local/_security holds the database\'s _security object: write it through /{db}/_security';

/** Marks the request as already parsed so express-pouchdb's body-parser leaves it alone. */
function setParsedBody(req: ShieldedRequest, body: unknown): void {
  req.body = body;
  req._body = true;
  req.headers['content-type'] = 'application/json';
}

async function repairMultipartPut(req: ShieldedRequest): Promise<void> {
  const body = await readBody(req);
  let doc;
  try {
    doc = multipartToDocument(body, req.headers['content-type']);
  } catch (err) {
    if (err instanceof MultipartError) throw new HttpError(400, 'bad_request', err.message);
    throw err;
  }
  checkDocumentSize(doc, String((doc as { _id?: unknown })._id ?? ''));
  setParsedBody(req, doc);
}

async function repairSelectorChanges(req: ShieldedRequest, url: URL): Promise<void> {
  let selector: unknown;
  if (req.method === 'POST') {
    const body = parseJsonBody(await readBody(req));
    selector = body.selector;
    delete body.selector;
    setParsedBody(req, body);
  }
  if (selector === undefined && url.searchParams.has('selector')) {
    try { selector = JSON.parse(url.searchParams.get('selector')!); } catch {
      throw new HttpError(400, 'bad_request', 'selector is not valid JSON');
    }
  }
  if (!selector || typeof selector !== 'object' || Array.isArray(selector)) {
    throw new HttpError(400, 'bad_request', 'Selector must be specified in POST payload');
  }
  url.searchParams.delete('filter');
  url.searchParams.set('selector', JSON.stringify(selector));
  req.url = url.pathname + url.search;
}

/** CouchDB's 400 for a database name it would not create; express-pouchdb creates any. */
function checkDbName(db: string): void {
  if (db.startsWith('_') || kDatabaseNamePattern.test(db)) return;
  throw new HttpError(400, 'illegal_database_name', `Name: '${db}'. Only lowercase characters (a-z), digits (0-9), and any of the characters _, $, (, ), +, -, and / are allowed. Must begin with a letter.`);
}

/** PUT /db/doc (and /db/_design/doc, /db/_local/doc), POST /db, POST /db/_bulk_docs, with a JSON body. */
function isJsonDocumentWrite(method: string | undefined, segments: string[], contentType: string): boolean {
  if (!/^application\/json/i.test(contentType) || segments.length === 0 || segments[0]!.startsWith('_')) return false;
  if (method === 'POST') return segments.length === 1 || (segments.length === 2 && segments[1] === '_bulk_docs');
  if (method !== 'PUT') return false;
  if (segments.length === 2) return !segments[1]!.startsWith('_');
  return segments.length === 3 && (segments[1] === '_design' || segments[1] === '_local');
}

/** Whether the request carries the store admin's Basic credentials. */
async function serveReplicate(req: IncomingMessage, res: ServerResponse, admin: { name: string; password: string }, replicate: Replicator): Promise<void> {
  if (req.method !== 'POST') throw new HttpError(405, 'method_not_allowed', 'Only POST allowed');
  if (!isServerAdmin(req, admin)) throw new HttpError(401, 'unauthorized', 'You are not a server admin.');
  let body: unknown;
  try { body = JSON.parse((await readBody(req)).toString('utf8')); } catch { throw new HttpError(400, 'bad_request', 'invalid UTF-8 JSON'); }
  const parsed = parseReplicateBody(body);
  if (typeof parsed === 'string') {
    // as CouchDB 3: a body that is not an object is a 400; a missing source or target a 500
    if (/^Missing/.test(parsed)) throw new HttpError(500, kMissingEnd, parsed);
    throw new HttpError(400, 'bad_request', parsed);
  }
  let result;
  try {
    result = await replicate(parsed);
  } catch (err) {
    const e = err as { status?: number; name?: string; message?: string; reason?: string };
    if (e.status === 404) throw new HttpError(500, 'db_not_found', `could not open ${e.reason ?? e.message ?? 'a database'}`);
    if (e.status === 401 || e.status === 403) throw new HttpError(e.status, e.name ?? 'unauthorized', e.reason ?? e.message ?? 'replication refused');
    throw new HttpError(500, 'replication_failed', e.reason ?? e.message ?? String(err));
  }
  sendJson(res, 200, replicationReply(result, randomBytes(16).toString('hex')));
}

function isServerAdmin(req: IncomingMessage, admin: { name: string; password: string }): boolean {
  const m = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  if (!m) return false;
  const given = Buffer.from(m[1]!, 'base64');
  const expected = Buffer.from(`${admin.name}:${admin.password}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * express-pouchdb's longpoll never times out and only stops listening when the socket closes,
 * which a keep-alive client never does. The route is given a stand-in for `req.connection`
 * (the only thing it listens on) so the shield can end the poll after `timeout`, as CouchDB does.
 */
function boundLongpoll(req: ShieldedRequest, res: ServerResponse, url: URL, updateSeq: (db: string) => Promise<unknown>): void {
  const stand = Object.assign(new EventEmitter(), { encrypted: false, remoteAddress: req.socket.remoteAddress });
  Object.defineProperty(req, 'connection', { value: stand, configurable: true });
  const close = () => stand.emit('close');
  req.socket.once('close', close);
  res.once('finish', () => req.socket.removeListener('close', close));
  const timeout = feedTimeout(url);
  const db = decodeURIComponent(url.pathname.split('/').filter(Boolean)[0]!);
  const timer = setTimeout(() => {
    if (res.writableEnded) return;
    void updateSeq(db).catch(() => null).then((seq) => {
      if (res.writableEnded) return;
      // the database was deleted under the poll: the answer cannot be finished; the client
      // sees the connection end and its next request gets the 404
      if (seq === undefined) { res.destroy(); close(); return; }
      // the route has already started the body when it is still waiting
      const tail = `${res.headersSent ? '' : '{"results":['}],\n"last_seq":${JSON.stringify(seq ?? null)},"pending":0}\n`;
      res.end(tail);
      close();
    });
  }, timeout);
  res.once('close', () => clearTimeout(timer));
  // after the shield ended the poll, the cancelled feed may still try to write
  const write = res.write.bind(res);
  const end = res.end.bind(res);
  res.write = ((...a: Parameters<typeof write>) => (res.writableEnded ? true : write(...a))) as typeof res.write;
  res.end = ((...a: Parameters<typeof end>) => (res.writableEnded ? res : end(...a))) as typeof res.end;
}

/**
 * express-pouchdb checks a database's existence against a list, then opens the database,
 * which creates it when it is gone; the list is updated some time after a deletion. A
 * request in either gap brings a deleted database back, empty. So a DELETE waits until the
 * requests already on their way into that database are in (short ones finished, feeds past
 * their start), and from the DELETE until the list no longer names the database the shield
 * answers requests to it itself (404), holding a PUT that creates it again until then.
 */
function deletionGuard(listDbs: () => Promise<string[]>) {
  const deleting = new Map<string, Promise<void>>();
  const inFlight = new Map<string, Set<{ feed: boolean; since: number }>>();
  const kFeedSetup = 200;
  return {
    pending: (db: string) => deleting.get(db),
    /** Counts a request to `db` until its answer is done. */
    track(db: string, feed: boolean, res: ServerResponse): void {
      const entry = { feed, since: Date.now() };
      const set = inFlight.get(db) ?? inFlight.set(db, new Set()).get(db)!;
      set.add(entry);
      res.once('close', () => { set.delete(entry); if (set.size === 0) inFlight.delete(db); });
    },
    async start(db: string, res: ServerResponse): Promise<void> {
      let done!: () => void;
      deleting.set(db, new Promise<void>((r) => { done = r; }));
      res.once('close', () => {
        void (async () => {
          for (let i = 0; i < 100 && (await listDbs().catch(() => [] as string[])).includes(db); i++) await new Promise((r) => setTimeout(r, 20));
          deleting.delete(db);
          done();
        })();
      });
      for (let i = 0; i < 250; i++) {
        const now = Date.now();
        const busy = [...(inFlight.get(db) ?? [])].some((e) => !e.feed || now - e.since < kFeedSetup);
        if (!busy) return;
        await new Promise((r) => setTimeout(r, 10));
      }
    },
  };
}

/**
 * Where express-pouchdb would answer otherwise than CouchDB (./answers.ts): the request is
 * refused, answered, or handed on repaired.
 */
async function answerAsCouch(req: ShieldedRequest, res: ServerResponse, segments: string[], url: URL): Promise<void> {
  const contentType = req.headers['content-type'] ?? '';
  checkQuery(req.method, segments, url.searchParams);
  checkDelete(req.method, segments, url.searchParams, req.headers['if-match']);
  if (req.method === 'POST' && isJsonPost(segments) && !isJsonContentType(contentType) && !(segments[1] === '_changes' && req.headers['content-length'] === '0')) {
    throw new HttpError(415, 'bad_content_type', 'Content-Type must be application/json');
  }
  if (req.method === 'PUT' && isDocumentPut(segments) && !isJsonContentType(contentType) && !/^multipart\/related/i.test(contentType)) {
    const doc = parseDocumentBody(await readBody(req), req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined);
    if (!isJsonObject(doc)) throw new HttpError(400, 'bad_request', 'Document must be a JSON object');
    checkDocumentSize(doc, decodeURIComponent(segments.slice(1).join('/')));
    setParsedBody(req, doc);
  }
  if (req.method === 'POST' && segments.length === 2 && segments[1] === '_bulk_get' && !segments[0]!.startsWith('_')) {
    const body = parseJsonBody(await readBody(req));
    checkBulkGet(body);
    setParsedBody(req, body);
  }
}

/** A `POST /_session` body (JSON or a form, as CouchDB takes it), handed on parsed; the name it logs in as. */
async function readLogin(req: ShieldedRequest): Promise<string | undefined> {
  const text = (await readBody(req)).toString('utf8');
  let body: Record<string, unknown>;
  if (/^application\/x-www-form-urlencoded/i.test(req.headers['content-type'] ?? '')) {
    body = Object.fromEntries(new URLSearchParams(text));
  } else {
    body = parseJsonBody(Buffer.from(text));
  }
  setParsedBody(req, body);
  return typeof body.name === 'string' ? body.name : undefined;
}

/** Refuses a locked-out name (CouchDB's 403), and counts this login if the store refuses its password. */
function watchLogin(lockout: Lockout, peer: string, name: string, res: ServerResponse): void {
  if (lockout.locked(peer, name)) throw new HttpError(403, kLockedOut.error, kLockedOut.reason);
  const end = res.end.bind(res);
  res.end = ((...a: Parameters<typeof end>) => {
    // only a refused password counts, not a refusal of what a known user asked for
    const chunk = a[0];
    if (res.statusCode === 401 && (typeof chunk === 'string' || Buffer.isBuffer(chunk)) && String(chunk).includes('Name or password is incorrect')) lockout.failed(peer, name);
    return end(...a);
  }) as typeof res.end;
}

export function createShield(app: ExpressApp, admin: { name: string; password: string }, updateSeq: (db: string) => Promise<unknown>, listDbs: () => Promise<string[]> = async () => [], uuid = 'embedded', replicate?: Replicator, access?: AccessOptions, direct?: DirectBulk): (req: IncomingMessage, res: ServerResponse) => void {
  const guard = deletionGuard(listDbs);
  const lockout = new Lockout();
  const fallback = (res: ServerResponse) => (err?: unknown) => {
    if (err === undefined) return sendJson(res, 404, { error: 'not_found', reason: 'missing' });
    const status = (err as { status?: number; statusCode?: number }).status ?? (err as { statusCode?: number }).statusCode;
    const code = typeof status === 'number' && status >= 400 && status < 600 ? status : 500;
    const reason = err instanceof Error ? err.message : String(err);
    sendJson(res, code, { error: code < 500 ? 'bad_request' : 'unknown_error', reason });
  };

  return (req: ShieldedRequest, res) => {
    void (async () => {
      let url: URL;
      try {
        url = new URL(req.url ?? '/', 'http://store');
        // express decodes path segments itself and throws on bad escapes
        decodeURIComponent(url.pathname);
      } catch {
        throw new HttpError(400, 'bad_request', 'malformed URL');
      }
      // Apache CouchDB 3 answers JSON whatever the Accept header says; express-pouchdb
      // answers text/plain unless asked for JSON, and nano only parses JSON answers
      req.headers.accept = 'application/json';
      // CouchDB 3 keeps its configuration under /_node/<node>/_config; express-pouchdb under /_config
      const node = /^\/_node\/[^/]+(\/_config(?:\/.*)?)$/.exec(url.pathname);
      if (node) {
        url.pathname = node[1]!;
        req.url = url.pathname + url.search;
      }
      const segments = url.pathname.split('/').filter(Boolean);
      const contentType = req.headers['content-type'] ?? '';
      // express-pouchdb crashes when a non-admin creates or deletes a database (its
      // authorisation wrapper returns a rejected promise where a database is expected)
      // (DELETE /_session is signing out, which anyone may do)
      if ((req.method === 'PUT' || req.method === 'DELETE') && segments.length === 1 && segments[0] !== '_session' && !isServerAdmin(req, admin)) {
        throw new HttpError(401, 'unauthorized', 'You are not a server admin.');
      }
      if (url.pathname === '/_replicate' && replicate) {
        await serveReplicate(req, res, admin, replicate);
        return;
      }
      if (url.pathname === '/_lively_store/stats' && req.method === 'GET') {
        if (!isServerAdmin(req, admin)) throw new HttpError(401, 'unauthorized', 'You are not a server admin.');
        sendJson(res, 200, { ...feedStats(), ...readAheadStats(), ...direct?.stats() });
        return;
      }
      if (segments.length === 0 && (req.method === 'GET' || req.method === 'HEAD')) {
        sendJson(res, 200, welcome(uuid));
        return;
      }
      await answerAsCouch(req, res, segments, url);
      if (res.writableEnded) return;
      const db = segments[0] !== undefined ? decodeURIComponent(segments[0]) : undefined;
      const serverAdmin = isServerAdmin(req, admin);
      if (db !== undefined && segments.length >= 2 && writesSecurityDoc(req, segments)) throw new HttpError(403, 'forbidden', kSecurityDocReason);
      if (db !== undefined && !serverAdmin && access) {
        const denial = await checkAccess(req, db, access);
        if (denial) throw new HttpError(denial.status, denial.error, denial.reason);
      }
      if (req.method === 'PUT' && segments.length === 1 && db !== undefined) checkDbName(db);
      const deletion = db !== undefined ? guard.pending(db) : undefined;
      if (deletion) {
        if (req.method === 'PUT' && segments.length === 1) await deletion;
        else throw new HttpError(404, 'not_found', 'Database does not exist.');
      }
      if (req.method === 'DELETE' && segments.length === 1 && db !== undefined && !db.startsWith('_')) {
        direct?.forget(db);
        res.once('close', () => direct?.forget(db));
        await guard.start(db, res);
      }
      else if (db !== undefined && !db.startsWith('_')) guard.track(db, segments[1] === '_changes' && /^(longpoll|continuous|eventsource)$/.test(url.searchParams.get('feed') ?? ''), res);
      const changes = segments[1] === '_changes' && segments.length === 2;
      if (changes) {
        const idle = !url.searchParams.has('heartbeat');
        const eventSource = url.searchParams.get('feed') === 'eventsource';
        if (eventSource) {
          url.searchParams.set('feed', 'continuous');
          // a browser reconnecting says where it was; CouchDB starts there
          const last = req.headers['last-event-id'] ?? url.searchParams.get('last-event-id');
          if (typeof last === 'string' && last !== '' && !url.searchParams.has('since')) url.searchParams.set('since', last);
          url.searchParams.delete('last-event-id');
        }
        const problem = normalizeHeartbeat(url);
        if (problem) throw new HttpError(400, 'bad_request', problem);
        req.url = url.pathname + url.search;
        // express-pouchdb gzips for clients that accept it, and a feed's lines then wait in
        // the compressor; CouchDB sends `_changes` as it is
        delete req.headers['accept-encoding'];
        const feed = url.searchParams.get('feed');
        if (feed === 'continuous' || feed === 'longpoll') tieLiveFeed(req, res, feed);
        if (feed === 'continuous' && idle) endIdleFeed(res, url, db!, updateSeq, !eventSource);
        if (eventSource) asEventSource(res);
        if (feed === 'continuous') endAtLimit(res, url, db!, updateSeq, !eventSource);
      }
      if (req.method === 'PUT' && /^multipart\/related/i.test(contentType) && segments.length >= 2) {
        await repairMultipartPut(req);
      } else if (changes && url.searchParams.get('filter') === '_selector') {
        await repairSelectorChanges(req, url);
      } else if (isJsonDocumentWrite(req.method, segments, contentType)) {
        await checkJsonWrite(req, segments, !serverAdmin);
      }
      if (changes && url.searchParams.get('feed') === 'longpoll') {
        boundLongpoll(req, res, url, updateSeq);
      }
      let login = basicNameOf(req);
      if (req.method === 'POST' && url.pathname === '/_session') login = await readLogin(req) ?? login;
      if (login !== undefined) watchLogin(lockout, peerOf(req), login, res);
      // the store admin's bulk writes, answered as express-pouchdb's route would (./direct-bulk.ts)
      if (direct && serverAdmin && db !== undefined && req.method === 'POST' && segments.length === 2 && segments[1] === '_bulk_docs' && req._body
        && direct.serve(req, res, db, url.search)) return;
      app(req, res, fallback(res));
    })().catch((err: unknown) => {
      if (err instanceof HttpError) sendJson(res, err.status, { error: err.error, reason: err.message });
      else fallback(res)(err);
    });
  };
}
