/**
 * What specs need to reach the suite's store: its URL, a unique database prefix per spec,
 * and a cleanup that removes that prefix's databases.
 */
import { randomBytes } from 'node:crypto';
import type nano from 'nano';
import { basicAuthOf, connect } from '../../src/store/couch.ts';
import type { EmbeddedStore } from '../../src/store/embedded/supervisor.ts';
import { eventually } from './eventually.ts';

export const kUrlEnv = 'LIVELY_TEST_COUCH_URL';
export const kEmbeddedPidEnv = 'LIVELY_TEST_EMBEDDED_PID';

let embedded: EmbeddedStore | undefined;

/** Set by the global fixture when it started the embedded store. */
export function setEmbeddedStore(store: EmbeddedStore): void {
  embedded = store;
}

/** The suite's embedded store object; only where this module instance is the fixture's own. */
export function embeddedStore(): EmbeddedStore | undefined {
  return embedded;
}

/** The pid of the embedded store the fixture started, or undefined when the suite runs
 * against COUCHDB_URL. Read from the environment: mocha may load this module twice
 * (once for the fixture, once for the specs). */
export function embeddedStorePid(): number | undefined {
  const pid = Number(process.env[kEmbeddedPidEnv]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Whether the fixture's embedded store process is still the one it started. */
export function embeddedStoreAlive(): boolean {
  const pid = embeddedStorePid();
  if (pid === undefined) return false;
  try { process.kill(pid, 0); return true; } catch { return false; }
}

/** The admin URL of the suite's store (with credentials). */
export function couchUrl(): string {
  const url = process.env[kUrlEnv];
  if (!url) throw new Error(`${kUrlEnv} is not set: run specs through mocha (spec/support/global.ts starts the store)`);
  return url;
}

/** A database-name prefix no other spec uses: `t<random>_`. */
export function uniquePrefix(): string {
  return `t${randomBytes(5).toString('hex')}_`;
}

/** Deletes every database whose name starts with `prefix`. */
export async function dropPrefix(prefix: string): Promise<void> {
  if (!/^[a-z][a-z0-9_$()+/-]*$/.test(prefix)) throw new Error(`refusing to drop databases for prefix ${JSON.stringify(prefix)}`);
  const server = connect(couchUrl());
  const dbs = await server.db.list();
  await Promise.all(dbs.filter((db) => db.startsWith(prefix)).map((db) => server.db.destroy(db).catch(() => undefined)));
}

/** An `Authorization: Basic …` header value for a name and password. */
export function basicAuth(name: string, password: string): string {
  return 'Basic ' + Buffer.from(`${name}:${password}`).toString('base64');
}

/**
 * Headers carrying the admin credentials of a CouchDB URL (the suite's store by default):
 * what the runtime's admin API (`/_lively/*` but health) asks for.
 */
export function adminHeaders(url: string = couchUrl()): { authorization: string } {
  const authorization = basicAuthOf(url);
  if (!authorization) throw new Error('the CouchDB URL carries no admin credentials');
  return { authorization };
}

/**
 * Makes database `name` refuse every document write with 403 `reason` (a design document whose
 * validate_doc_update throws), as a store with a full disk or a bad design document would, and
 * returns what lifts it. Both wait until a probe write sees the change: CouchDB keeps a
 * database's validation functions in its ddoc cache and drops them a moment after a design
 * document is written or deleted, so a write right after either may still be judged by the old
 * ones.
 */
export async function refuseWrites(name: string, reason: string): Promise<() => Promise<void>> {
  const db = connect(couchUrl()).use<Record<string, unknown>>(name);
  const ddoc = await db.insert({ _id: '_design/refuse', validate_doc_update: `function () { throw({ forbidden: ${JSON.stringify(reason)} }); }` });
  await untilProbe(db, 'refused');
  return async () => {
    await db.destroy('_design/refuse', ddoc.rev);
    await untilProbe(db, 'accepted');
  };
}

/** Waits until a probe write to `db` is `want`; the probe document is deleted again. */
function untilProbe(db: nano.DocumentScope<Record<string, unknown>>, want: 'refused' | 'accepted'): Promise<void> {
  return eventually(async () => {
    const id = `probe-${randomBytes(6).toString('hex')}`;
    try {
      const r = await db.insert({ _id: id });
      await db.destroy(id, r.rev);
      return want === 'accepted';
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 403) throw err;
      return want === 'refused';
    }
  }, 10_000, `writes to ${db.config.db} ${want} after the design document changed`);
}
