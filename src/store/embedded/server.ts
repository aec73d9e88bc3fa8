/**
 * Child-process entry of the embedded CouchDB-compatible store: express-pouchdb over
 * pouchdb-node (LevelDB under `<dataDir>/store`, or memory for tests), served by node:http
 * on loopback with LivelyCouch's shield in front (see ./shield.ts). Started and restarted by
 * ./supervisor.ts; never outlives it.
 */
import { createRequire } from 'node:module';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { Env, isPasswordMessage, kAdminName, type ReadyLine } from './protocol.ts';
import { createShield } from './shield.ts';
import type { SecurityObject, UserCtx } from './access.ts';
import { guardChangesFilters } from './filters.ts';

const require = createRequire(import.meta.url);

function fail(msg: string): never {
  process.stderr.write(`embedded store: ${msg}\n`);
  process.exit(2);
}

const dataDir = process.env[Env.dataDir] ?? fail(`${Env.dataDir} is not set`);
const port = Number(process.env[Env.port] ?? '0');
const memory = process.env[Env.memory] === '1';
const parentPid = Number(process.env[Env.parentPid] ?? process.ppid);
const signup = process.env[Env.signup] === '1';

/** The admin password, the supervisor's first IPC message. */
function receivePassword(): Promise<string> {
  if (!process.send) fail('no IPC channel to receive the admin password on');
  return new Promise((resolve) => {
    const timer = setTimeout(() => fail('no admin password arrived'), 30_000);
    const on = (m: unknown) => {
      if (!isPasswordMessage(m)) return;
      clearTimeout(timer);
      process.off('message', on);
      resolve(m.password);
    };
    process.on('message', on);
  });
}

// A store without its parent would hold the port and the LevelDB lock forever.
function watchParent(): void {
  if (process.send) process.on('disconnect', () => process.exit(0));
  const timer = setInterval(() => {
    try { process.kill(parentPid, 0); } catch { process.exit(0); }
  }, 1000);
  timer.unref();
}

// express-pouchdb keeps its config, log file and (disk mode) databases relative to paths we
// give it; it dies on a missing log directory, so all of them are made first.
const storeDir = path.join(dataDir, 'store');
const etcDir = path.join(dataDir, 'etc');
fs.mkdirSync(storeDir, { recursive: true });
fs.mkdirSync(etcDir, { recursive: true });

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

process.on('unhandledRejection', (reason) => {
  if (!answeredPouchError(reason)) throw reason;
  process.stderr.write(`embedded store: a rejection PouchDB left unhandled was ignored: ${reason.status} ${reason.name ?? ''} ${reason.message ?? ''}\n`);
});

async function main(): Promise<void> {
  watchParent();
  const password = await receivePassword();
  let PouchDB = require('pouchdb-node');
  guardChangesFilters(PouchDB);
  if (memory) {
    PouchDB.plugin(require('pouchdb-adapter-memory'));
    PouchDB = PouchDB.defaults({ adapter: 'memory' });
  } else {
    PouchDB = PouchDB.defaults({ prefix: storeDir + path.sep });
  }

  const expressPouchDB = require('express-pouchdb');
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
  await app.setPouchDB(PouchDB);

  // read straight from the database, past express-pouchdb's authorisation: only the
  // sequence number of a longpoll that timed out is taken from it. A database deleted while
  // the poll waited is not opened (opening would create it again, empty): undefined.
  const updateSeq = async (db: string): Promise<unknown> => {
    if (!((await PouchDB.allDbs()) as string[]).includes(db)) return undefined;
    const info = await new PouchDB(db, { skip_setup: true }).info();
    return info.update_seq;
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
  const server = http.createServer(createShield(app, { name: kAdminName, password }, updateSeq, () => PouchDB.allDbs() as Promise<string[]>, { security, whoAmI, signup }));
  server.keepAliveTimeout = 65_000;
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{"error":"bad_request","reason":"malformed HTTP request"}\n');
    else socket.destroy();
  });
  server.listen(port, '127.0.0.1', () => {
    const address = server.address();
    if (!address || typeof address === 'string') fail('no TCP address');
    listening = address.port;
    const line: ReadyLine = { ready: true, port: address.port };
    process.stdout.write(JSON.stringify(line) + '\n');
  });
  server.on('error', (err) => fail(`cannot listen: ${err.message}`));
}

main().catch((err) => fail(err instanceof Error ? err.stack ?? err.message : String(err)));
