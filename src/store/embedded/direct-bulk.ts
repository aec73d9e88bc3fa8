/**
 * The direct lane: the store admin's `POST /{db}/_bulk_docs` answered by the shield itself, with
 * the very database object and options express-pouchdb's route would use, without passing
 * through express-pouchdb's middleware.
 *
 * The runtime's busiest writes are of this kind: activation records and the durable journal.
 * Through express-pouchdb each pays its router, its authentication (again, after the shield),
 * its vhost, rewrite and log layers, a list of all databases, a body parser and an answer built
 * by express: about 1 ms of the store's CPU per write, where PouchDB's own `bulkDocs` takes
 * 0.06 to 0.2 ms (`npm run bench:store`, docs/benchmarks.md).
 *
 * What the lane keeps the same as express-pouchdb's route (lib/routes/bulk-docs.js):
 *  - the database object: the one express-pouchdb's own route used for this database, wrapped
 *    with its validation, security and ordering wrappers. It is learned from that route: the
 *    first write to a database always goes through express-pouchdb, and so does every write
 *    after its deletion, until one has gone through again;
 *  - the options: `new_edits` from the body, and the admin's user context
 *    (`{ name, roles: ['_admin'], db }`); the database's security object is read by the
 *    checks of the write (./bulk-order.ts), on both paths;
 *  - the answer: 201 with the rows, a refused document as `{ id, error, reason }`, an error of
 *    the whole write as express-pouchdb's `sendError` words it, through the same CouchDB
 *    wording (./answers.ts, couchBody).
 *
 * Only the store admin's requests take the lane (the shield has checked its credentials and its
 * lockout), only to databases not named with `_` (`_users` and the other system databases keep
 * express-pouchdb's own path), only with no query string and a body of `docs` the shield has
 * already read and checked. Everything else goes to express-pouchdb as before. A change of the
 * `admins` configuration closes the lane for good: express-pouchdb then decides who is an admin.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { couchBody } from './answers.ts';

/** PouchDB's database, as far as the lane uses it. */
export interface BulkDb {
  bulkDocs(body: unknown, opts: Record<string, unknown>, cb: (err: unknown, rows?: unknown[]) => void): unknown;
}

type PouchError = { status?: number; name?: string; message?: string };

export interface DirectBulkStats { direct_bulk: number; direct_bulk_learned: number }

export class DirectBulk {
  private readonly dbs = new Map<string, BulkDb>();
  /** bumped when a database is deleted: what a request started before learned is stale. */
  private readonly generations = new Map<string, number>();
  private open = true;
  private readonly counts: DirectBulkStats = { direct_bulk: 0, direct_bulk_learned: 0 };

  constructor(private readonly adminName: string) {}

  /** Closes the lane for good (the admins configuration changed). */
  close(): void {
    this.open = false;
    this.dbs.clear();
  }

  /** `db` is being deleted, or was: its object is forgotten, and one learned by a request already under way is not kept. */
  forget(db: string): void {
    this.dbs.delete(db);
    this.generations.set(db, (this.generations.get(db) ?? 0) + 1);
  }

  stats(): DirectBulkStats {
    return { ...this.counts };
  }

  /**
   * Whether this request (the store admin's, its JSON body read into `req.body`) may take the
   * lane; when it may not yet, because the database's object is not known, the request goes
   * through express-pouchdb and the object it used is learned from it.
   */
  serve(req: IncomingMessage & { body?: unknown; db?: unknown }, res: ServerResponse, db: string, search: string): boolean {
    if (!this.open || db.startsWith('_') || search !== '') return false;
    const body = req.body as { docs?: unknown; new_edits?: unknown } | undefined;
    if (typeof body !== 'object' || body === null || !Array.isArray(body.docs)) return false;
    const known = this.dbs.get(db);
    if (!known) {
      const generation = this.generations.get(db) ?? 0;
      res.once('finish', () => {
        const used = req.db as BulkDb | undefined;
        if (!this.open || res.statusCode !== 201 || typeof used?.bulkDocs !== 'function') return;
        if ((this.generations.get(db) ?? 0) !== generation) return;
        this.dbs.set(db, used);
        this.counts.direct_bulk_learned++;
      });
      return false;
    }
    this.counts.direct_bulk++;
    const opts: Record<string, unknown> = 'new_edits' in body ? { new_edits: body.new_edits } : {};
    opts.userCtx = { name: this.adminName, roles: ['_admin'], db };
    const url = `POST ${req.url ?? ''}`;
    known.bulkDocs(body, opts, (err, rows) => {
      if (err) {
        const { status, body: answer } = errorAnswer(err as PouchError);
        send(res, status, couchBody(answer, url));
        return;
      }
      send(res, 201, couchBody((rows ?? []).map((r) => {
        const info = r as PouchError & { id?: string; error?: unknown };
        return info.error ? { id: info.id, error: info.name, reason: info.message } : info;
      }), url));
    });
    return true;
  }
}

/** express-pouchdb's `sendError` (lib/utils.js), for an error of the whole write. */
function errorAnswer(err: PouchError): { status: number; body: unknown } {
  const status = err.status || 500;
  if (err.name && err.message) {
    let error = err.name;
    if (error === 'Error' || error === 'TypeError') error = err.message.includes('Bad special document member') ? 'doc_validation' : 'bad_request';
    return { status, body: { error, reason: err.message } };
  }
  return { status, body: err };
}

/** As express-pouchdb sends JSON to a client that accepts it (the shield has made every client one). */
function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) { res.destroy(); return; }
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'must-revalidate' });
  res.end(text);
}
