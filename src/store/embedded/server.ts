/**
 * Child-process entry of the embedded CouchDB-compatible store: express-pouchdb over
 * pouchdb-node (LevelDB under `<dataDir>/store`, or memory for tests), served by node:http
 * on loopback with LivelyCouch's shield in front (see ./shield.ts). Started and restarted by
 * ./supervisor.ts; never outlives it.
 */
import { couchBody, newServerUuid } from './answers.ts';
import { createRequire } from 'node:module';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { Env, isStartMessage, kAdminName, type ReadyLine, type StartMessage } from './contract.ts';
import type { Replicator } from './replicate.ts';

import { createShield } from './shield.ts';
import type { SecurityObject, UserCtx } from './access.ts';
import { guardChangesFilters } from './filters.ts';
import { rememberAdminLogins, type SessionApi } from './admin-auth.ts';
import { deferExpressExtras } from './lazy-express.ts';
import { deferPouchFind } from './lazy-find.ts';
import { orderBulkDocs } from './bulk-order.ts';
import { deferPouchHttp } from './lazy-http.ts';
import { installReadAhead } from './read-ahead.ts';
import { installSyncWrites } from './sync-writes.ts';
import { DirectBulk } from './direct-bulk.ts';
import type * as Packages from './packages.cts';

const require = createRequire(import.meta.url);

declare const LIVELYCOUCH_DIST: boolean | undefined;
/**
 * ./packages.cts: in the build, its packages are in this bundle; from the sources it is loaded
 * through node's CommonJS loader, so that the packages' own `require`s are node's (through the
 * ESM loader, a package requiring a JSON file fails on node 20).
 */
async function packagesModule(): Promise<typeof Packages> {
  if (typeof LIVELYCOUCH_DIST !== 'undefined') return import('./packages.cts');
  return require('./packages.cts') as typeof Packages;
}

function fail(msg: string): never {
  process.stderr.write(`embedded store: ${msg}\n`);
  process.exit(2);
}

/**
 * The supervisor's StartMessage (./contract.ts). Listened for from the first moment, so that it
 * is not missed while the packages load; they do not need it, which is what lets the command
 * spawn this process before the runtime has read its configuration (./spawn.ts).
 */
function receiveStart(): Promise<StartMessage> {
  if (!process.send) fail('no IPC channel to receive the start message on');
  return new Promise((resolve) => {
    const on = (m: unknown) => {
      if (!isStartMessage(m)) return;
      process.off('message', on);
      resolve(m);
    };
    process.on('message', on);
  });
}

/** The environment the supervisor runs this process with; what the spawn gave is replaced. */
function takeEnv(env: Record<string, string>): void {
  for (const k of Object.keys(process.env)) if (!Object.hasOwn(env, k)) delete process.env[k];
  Object.assign(process.env, env);
}

// A store without its parent would hold the port and the LevelDB lock forever.
const parentPid = process.ppid;
function watchParent(): void {
  if (process.send) process.on('disconnect', () => process.exit(0));
  const timer = setInterval(() => {
    try { process.kill(parentPid, 0); } catch { process.exit(0); }
  }, 1000);
  timer.unref();
}

/**
 * PouchDB's error objects carry a numeric HTTP status (`not_found`, `bad_request`, …). A filtered
 * `_changes` that fails (a missing design document or filter, a filter that throws) is answered
 * with its error, and then PouchDB rejects a second promise that nothing holds. That rejection
 * is logged rather than allowed to end the store, which would drop every other request with it.
 */
function answeredPouchError(reason: unknown): reason is { status: number; name?: string; message?: string } {
  return typeof reason === 'object' && reason !== null && typeof (reason as { status?: unknown }).status === 'number'
    && (reason as { error?: unknown }).error === true;
}

/**
 * express-pouchdb builds answers with `new Buffer()`. Node says that this is deprecated (DEP0005)
 * only for code outside node_modules, which the build's bundle is: the warning would be one
 * line of the store's stderr, which the runtime logs, at every start. That one is dropped.
 */
const emitWarning = process.emitWarning.bind(process) as (...a: unknown[]) => void;
process.emitWarning = ((warning: unknown, ...rest: unknown[]) => {
  const code = typeof rest[0] === 'object' && rest[0] !== null ? (rest[0] as { code?: unknown }).code : rest[1];
  if (code === 'DEP0005') return;
  emitWarning(warning, ...rest);
}) as typeof process.emitWarning;

process.on('unhandledRejection', (reason) => {
  if (!answeredPouchError(reason)) throw reason;
  process.stderr.write(`embedded store: a rejection PouchDB left unhandled was ignored: ${reason.status} ${reason.name ?? ''} ${reason.message ?? ''}\n`);
});

/** The server's uuid in `GET /`: made once per data directory, as CouchDB's is per server. */
function serverUuid(etcDir: string): string {
  const file = path.join(etcDir, 'uuid');
  try { return fs.readFileSync(file, 'utf8').trim(); } catch { /* the first start */ }
  const uuid = newServerUuid();
  fs.writeFileSync(file, uuid + '\n', { mode: 0o600 });
  return uuid;
}

type BulkGetCallback = (err: unknown, res?: { results: Array<{ id: string; docs: unknown[] }> }) => void;
type BulkGet = (opts: { docs?: unknown }, cb?: BulkGetCallback) => unknown;

/**
 * Each database's `bulkGet` as `_bulk_get` must answer: PouchDB never answers an empty list
 * (CouchDB: no results), and express-pouchdb's route turns PouchDB's per-document errors into
 * `{}`; shaped as below, the route hands on CouchDB's `{"error": {id, rev, error, reason}}`.
 */
function couchBulkGet(db: { bulkGet: BulkGet }): void {
  const bulkGet = db.bulkGet.bind(db);
  db.bulkGet = (opts, cb) => {
    const run = Array.isArray(opts?.docs) && opts.docs.length === 0
      ? Promise.resolve({ results: [] })
      : new Promise<{ results: Array<{ id: string; docs: unknown[] }> }>((resolve, reject) => { bulkGet(opts, (err, res) => (err ? reject(err) : resolve(res!))); });
    const shaped = run.then((res) => ({
      results: res.results.map((r) => ({
        id: r.id,
        docs: r.docs.map((d) => {
          const e = (d as { error?: { name?: unknown; message?: unknown; docId?: unknown; rev?: unknown } }).error;
          if (!e) return d;
          return { error: true, name: { id: r.id, rev: String(e.rev ?? 'undefined'), error: e.name, reason: e.message } };
        }),
      })),
    }));
    if (!cb) return shaped;
    shaped.then((r) => cb(null, r), (err: unknown) => cb(err));
    return undefined;
  };
}

type SecurityWriter = (this: LocalDb, secObj: unknown, callback?: (err: unknown, res?: { ok: true }) => void) => Promise<{ ok: true }>;
type LocalDb = { name: string; type(): string; get(id: string): Promise<Record<string, unknown>>; put(doc: object): Promise<unknown> };

/**
 * `PUT /{db}/_security` as CouchDB answers it: the last writer wins, never 409. pouchdb-security
 * keeps the object in `_local/_security` and writes it with a read and a put, so two writers at
 * once (two runtimes starting on one store) got "Document update conflict" from the loser. Here
 * the writes to one database take turns, each reading the revision the one before it wrote; the
 * shield refuses every other way of writing that document. Remote databases (the http adapter)
 * keep the plugin's own path.
 */
function lastWriterWinsSecurity(security: { putSecurity: SecurityWriter }): void {
  const original = security.putSecurity;
  const turns = new Map<string, Promise<unknown>>();
  security.putSecurity = function (this: LocalDb, secObj, callback) {
    if (['http', 'https'].includes(this.type())) return original.call(this, secObj, callback);
    const db = this;
    const write = async (): Promise<{ ok: true }> => {
      const doc = await db.get('_local/_security').catch(() => ({ _id: '_local/_security' }));
      await db.put({ ...doc, security: secObj });
      return { ok: true };
    };
    const run = (turns.get(db.name) ?? Promise.resolve()).then(write);
    const settled = run.catch(() => undefined);
    turns.set(db.name, settled);
    void settled.then(() => { if (turns.get(db.name) === settled) turns.delete(db.name); });
    if (callback) run.then((r) => callback(null, r), (err: unknown) => callback(err));
    return run;
  };
}

/** PouchDB whose databases answer `_bulk_get` as CouchDB does (see couchBulkGet). */
function withCouchBulkGet<T extends new (...a: any[]) => { bulkGet: BulkGet }>(Base: T): T {
  return class extends Base {
    constructor(...a: any[]) {
      super(...a);
      couchBulkGet(this);
    }
  };
}

async function main(): Promise<void> {
  const started = receiveStart();
  watchParent();
  // what needs no configuration first: PouchDB's and express-pouchdb's modules
  deferPouchHttp(require);
  deferPouchFind(require);
  orderBulkDocs(require);
  deferExpressExtras(require);
  const { storePackages, memoryAdapter } = await packagesModule();
  const packages = storePackages();
  let PouchDB = packages.PouchDB;
  guardChangesFilters(PouchDB);
  const { pouchSecurity, expressPouchDB, expressPouchUtils: utils } = packages;
  const sessionApi = packages.sessionApi as SessionApi;
  const { password, dataDir, port, memory, signup, sync, env } = await started;
  let syncing = false;
  takeEnv(env);
  // express-pouchdb keeps its config, log file and (disk mode) databases relative to paths we
  // give it; it dies on a missing log directory, so all of them are made first.
  const storeDir = path.join(dataDir, 'store');
  const etcDir = path.join(dataDir, 'etc');
  fs.mkdirSync(storeDir, { recursive: true });
  fs.mkdirSync(etcDir, { recursive: true });
  if (memory) {
    PouchDB.plugin(memoryAdapter());
    // Memory first among the adapters chosen by name, not forced on every name as
    // defaults({adapter}) would: a URL (a _replicate source or target) still gets http.
    PouchDB.preferredAdapters = ['memory', ...PouchDB.preferredAdapters.filter((a: string) => a !== 'memory')];
  } else {
    installReadAhead(packages.leveldown);
    if (sync) syncing = installSyncWrites(packages.leveldown);
    PouchDB = PouchDB.defaults({ prefix: storeDir + path.sep });
  }

  PouchDB = withCouchBulkGet(PouchDB);
  lastWriterWinsSecurity(pouchSecurity);
  // CouchDB names the database in a validate_doc_update's user context; express-pouchdb looks
  // for a `_db_name` PouchDB 9 no longer has. A copy: the session's object is shared.
  const makeOpts = utils.makeOpts;
  utils.makeOpts = (req: { db?: { name?: unknown } }, start?: Record<string, unknown>) => {
    const opts = makeOpts(req, start);
    const name = req.db?.name;
    if (opts.userCtx && typeof name === 'string') opts.userCtx = { ...opts.userCtx, db: decodeURIComponent(name) };
    return opts;
  };
  // every JSON answer of express-pouchdb goes through this one function: put in CouchDB's words
  const sendJSON = utils.sendJSON;
  utils.sendJSON = (res: { req?: { method?: string; originalUrl?: string } }, status: number, body: unknown) =>
    sendJSON(res, status, couchBody(body, `${res.req?.method ?? ''} ${res.req?.originalUrl ?? ''}`));
  const app = expressPouchDB({
    configPath: path.join(etcDir, 'config.json'),
    logPath: path.join(etcDir, 'log.txt'),
    inMemoryConfig: true,
    overrideMode: { exclude: ['routes/fauxton', 'routes/replicate', 'replicator', 'routes/active-tasks'] },
  });
  // The admin ends the admin party before the first request: creating databases, writing
  // `_security` and design documents then need the admin, and validate_doc_update sees
  // the caller's real userCtx.
  await new Promise<void>((resolve, reject) =>
    app.couchConfig.set('admins', kAdminName, password, (err: unknown) => (err ? reject(err) : resolve())));
  app.couchConfig.set('log', 'level', 'error', () => {});
  // the runtime's requests as the admin are not authenticated from scratch every time (./admin-auth.ts)
  const adminLogins = rememberAdminLogins(sessionApi, { name: kAdminName, password, timeoutS: () => Number(app.couchConfig.get('couch_httpd_auth', 'timeout')) || 600 });
  const direct = process.env[Env.directBulk] === 'off' ? undefined : new DirectBulk(kAdminName);
  app.couchConfig.on('admins', () => { adminLogins.forget(); direct?.close(); });
  await app.setPouchDB(PouchDB);
  app.disable('x-powered-by');

  // read straight from the database, past express-pouchdb's authorisation: only the
  // sequence number of a longpoll that timed out is taken from it. A database deleted while
  // the poll waited is not opened (opening would create it again, empty): undefined.
  const updateSeq = async (db: string): Promise<unknown> => {
    if (!((await PouchDB.allDbs()) as string[]).includes(db)) return undefined;
    const info = await new PouchDB(db, { skip_setup: true }).info();
    return info.update_seq;
  };
  // NODE_EXTRA_CA_CERTS of the runtime, read when a replication first needs TLS (./extra-ca.ts)
  let caSetUp: Promise<void> | undefined;
  const trustCa = () => (caSetUp ??= (async () => {
    const file = process.env[Env.extraCa];
    if (!file) return;
    const { trustExtraCa } = await import('./extra-ca.ts');
    trustExtraCa(file, (message) => process.stderr.write(`embedded store: ${message}\n`));
  })());
  // the status of GET `url`, through node's global agents as PouchDB's own requests go
  const status = async (url: string, headers: Record<string, string> | undefined): Promise<number> => {
    const client = url.startsWith('https:') ? await import('node:https') : http;
    return new Promise((resolve, reject) => {
      const req = client.request(url, { headers }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
      req.on('error', reject);
      req.end();
    });
  };
  const replicate: Replicator = async (r) => {
    await trustCa();
    const open = async (name: string, create: boolean) => {
      if (/^https?:\/\//.test(name)) {
        // asked first, so that a database that is not there is CouchDB's db_not_found and not
        // a failure PouchDB's http adapter would leave unhandled
        const u = new URL(name);
        const shown = `${u.origin}${u.pathname.replace(/\/?$/, '/')}`;
        const auth = u.username ? { authorization: `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}` } : undefined;
        const code = await status(shown, auth).catch((err: Error) => { throw Object.assign(new Error(`${shown}: ${err.message}`), { status: 502 }); });
        if (code === 404) throw Object.assign(new Error(shown), { status: 404, reason: shown });
        if (code === 401 || code === 403) throw Object.assign(new Error(`${shown}: ${code}`), { status: code, reason: `${shown} refused the credentials` });
        return new PouchDB(name, { skip_setup: true });
      }
      if (!create && !((await PouchDB.allDbs()) as string[]).includes(name)) throw Object.assign(new Error(name), { status: 404, reason: name });
      return new PouchDB(name);
    };
    const source = await open(r.source, false);
    const target = await open(r.target, r.create_target === true);
    const started = new Date().toISOString();
    const out = await PouchDB.replicate(source, target, { ...(r.selector ? { selector: r.selector } : {}), ...(r.doc_ids ? { doc_ids: r.doc_ids } : {}) });
    return { docs_read: out.docs_read, docs_written: out.docs_written, doc_write_failures: out.doc_write_failures, start_time: started, end_time: new Date().toISOString(), last_seq: out.last_seq };
  };
  // `_security` as the shield enforces it (./access.ts): read from the database, one PouchDB
  // object per database (each object holds a listener until the database is destroyed)
  const opened = new Map<string, { get(id: string): Promise<{ security?: SecurityObject }> }>();
  PouchDB.on('destroyed', (name: string) => opened.delete(name));
  const security = async (db: string): Promise<SecurityObject | undefined> => {
    if (!((await PouchDB.allDbs()) as string[]).includes(db)) return undefined;
    let handle = opened.get(db);
    if (!handle) {
      handle = new PouchDB(db) as { get(id: string): Promise<{ security?: SecurityObject }> };
      opened.set(db, handle);
    }
    const doc = await handle.get('_local/_security').catch(() => ({ security: {} }));
    return doc.security ?? {};
  };
  let listening = 0;
  // who the credentials name, answered by express-pouchdb's own `_session` (Basic or cookie)
  const whoAmI = async (req: http.IncomingMessage): Promise<UserCtx | 'bad'> => {
    const headers: Record<string, string> = {};
    if (req.headers.authorization) headers.authorization = req.headers.authorization;
    if (req.headers.cookie) headers.cookie = req.headers.cookie;
    if (!headers.authorization && !headers.cookie) return { name: null, roles: [] };
    const res = await fetch(`http://127.0.0.1:${listening}/_session`, { headers });
    if (res.status === 401) return 'bad';
    const body = await res.json() as { userCtx?: UserCtx };
    return { name: body.userCtx?.name ?? null, roles: Array.isArray(body.userCtx?.roles) ? body.userCtx.roles : [] };
  };
  const server = http.createServer(createShield(app, { name: kAdminName, password }, updateSeq, () => PouchDB.allDbs() as Promise<string[]>, serverUuid(etcDir), replicate, { security, whoAmI, signup }, direct));
  server.keepAliveTimeout = 65_000;
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{"error":"bad_request","reason":"malformed HTTP request"}\n');
    else socket.destroy();
  });
  server.listen(port, '127.0.0.1', () => {
    const address = server.address();
    if (!address || typeof address === 'string') fail('no TCP address');
    listening = address.port;
    const line: ReadyLine = { ready: true, port: address.port, sync: syncing };
    process.stdout.write(JSON.stringify(line) + '\n');
  });
  server.on('error', (err) => fail(`cannot listen: ${err.message}`));
}

main().catch((err) => fail(err instanceof Error ? err.stack ?? err.message : String(err)));
