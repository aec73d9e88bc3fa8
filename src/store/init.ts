/**
 * `init`: the runtime's databases, their `_security`, and the validation design documents.
 * Idempotent: run at every start and by `livelycouch init`.
 *
 * Writing a worker is running code on the server, so only admins (and `writerRole`) may write
 * events and workers; and a worker document holds code and `env`, so nobody else may read them
 * either: `_security` names admins and the writer role as db admins (design documents need
 * that) and as the only members. validate_doc_update keeps its own write rule (and checks
 * content). The runtime's state (`<prefix>logs`) and the secrets (`<prefix>secrets`) are for
 * server admins only, `_local` documents included.
 */
import { eventsDesignDoc, workersDesignDoc, type ValidationDesignDoc } from '../events/design.ts';
import { LivelyError } from '../shared/errors.ts';
import { kDatabaseNamePattern } from '../shared/db-name.ts';
import { ensureDb, getDoc, putDoc, retry, statusOf, type DocumentScope, type ServerScope } from './couch.ts';
import { ensureStateDb } from './state-db.ts';

export interface InitOptions {
  prefix: string;
  writerRole?: string;
}

export interface StoreDatabases {
  events: string;
  workers: string;
  logs: string;
  secrets: string;
}


export function databaseNames(prefix: string): StoreDatabases {
  const names = { events: `${prefix}events`, workers: `${prefix}workers`, logs: `${prefix}logs`, secrets: `${prefix}secrets` };
  for (const name of Object.values(names)) {
    if (!kDatabaseNamePattern.test(name)) throw new LivelyError('LC_CONFIG', `options.prefix gives an invalid CouchDB database name: ${JSON.stringify(name)}`);
  }
  return names;
}

export function securityObject(writerRole?: string): { admins: { names: string[]; roles: string[] }; members: { names: string[]; roles: string[] } } {
  const roles = writerRole ? ['_admin', writerRole] : ['_admin'];
  return { admins: { names: [], roles }, members: { names: [], roles: [...roles] } };
}

/** Server admins only: the runtime's state and the secrets. */
export const kAdminOnlySecurity = Object.freeze({
  admins: { names: [], roles: ['_admin'] },
  members: { names: [], roles: ['_admin'] },
});

export async function initStore(server: ServerScope, opts: InitOptions): Promise<StoreDatabases> {
  if (!opts || typeof opts.prefix !== 'string') throw new LivelyError('LC_CONFIG', 'options.prefix must be a string');
  if (opts.writerRole !== undefined && (typeof opts.writerRole !== 'string' || opts.writerRole === '' || opts.writerRole.startsWith('_'))) {
    throw new LivelyError('LC_CONFIG', 'options.writerRole must be a non-empty role name not starting with "_"');
  }
  const names = databaseNames(opts.prefix);
  const security = securityObject(opts.writerRole);
  // Each database is made to exist and to carry its `_security` before anything else is written
  // to it, and the events and workers databases get their rules beside that; the four are
  // independent of each other, so they are set up side by side too. A start on databases that
  // are already set up only reads: their `_security` and the design documents, one round.
  const app = async (name: string, ddoc: ValidationDesignDoc): Promise<void> => {
    const secured = secureDb(server, name, security, () => ensureDb(server, name));
    const rules = async () => {
      try {
        await retry(() => installDesignDoc(server.use(name), ddoc));
      } catch (err) {
        // the database did not exist yet: the rules go in once it does
        if (statusOf(err) !== 404) throw err;
        await secured;
        await retry(() => installDesignDoc(server.use(name), ddoc));
      }
    };
    await Promise.all([secured, rules()]);
  };
  await Promise.all([
    app(names.events, eventsDesignDoc(opts.writerRole)),
    app(names.workers, workersDesignDoc(opts.writerRole)),
    // one shard, one copy: where runtimes arbitrate, a 201 must mean "won" (./state-db.ts)
    secureDb(server, names.logs, kAdminOnlySecurity, () => ensureStateDb(server, names.logs)),
    secureDb(server, names.secrets, kAdminOnlySecurity, () => ensureDb(server, names.secrets)),
  ]);
  return names;
}

/**
 * Makes database `name` exist (`create`, when reading its `_security` says it does not) and carry
 * `security`, written only when what it has differs.
 */
async function secureDb(server: ServerScope, name: string, security: object, create: () => Promise<void>): Promise<void> {
  let current: unknown;
  try {
    current = await retry(() => server.request({ db: name, path: '_security' }));
  } catch (err) {
    if (statusOf(err) !== 404) throw err;
    await retry(create);
  }
  if (current !== undefined && sameJson(current, security)) return;
  await retry(() => putSecurity(server, name, security));
}

async function putSecurity(server: ServerScope, db: string, security: object): Promise<void> {
  await server.request({ db, path: '_security', method: 'PUT', body: security });
}

type DesignDoc = { _id: string; _rev?: string } & Record<string, unknown>;

function sameContent(a: DesignDoc, b: DesignDoc): boolean {
  const strip = ({ _rev: _r, ...rest }: DesignDoc) => rest;
  return sameJson(strip(a), strip(b));
}

/** Equal as JSON, whatever the order of their keys. */
function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  }
  return v;
}

/** Writes the design document when it is missing or differs, carrying the current _rev. */
export async function installDesignDoc(db: DocumentScope<unknown>, design: { _id: string; _rev?: string }): Promise<void> {
  const ddoc = design as DesignDoc;
  for (let attempt = 0; ; attempt++) {
    let current: DesignDoc | undefined;
    try {
      current = await getDoc<DesignDoc>(db, ddoc._id);
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
    if (current && sameContent(current, ddoc)) return;
    const doc: DesignDoc = { ...ddoc };
    delete doc._rev;
    if (current) doc._rev = current._rev;
    try {
      await putDoc(db, doc);
      return;
    } catch (err) {
      // another instance installed it at the same moment: compare again
      if (statusOf(err) !== 409 || attempt >= 2) throw err;
    }
  }
}
