/**
 * `_bulk_docs` answers in the order of the request, as CouchDB's do. pouchdb-validation,
 * pouchdb-security and pouchdb-auth wrap a database's bulkDocs with pouchdb-bulkdocs-wrapper,
 * which checks every document asynchronously and hands on the accepted ones in the order their
 * checks finished, refused ones first: on disk, where those checks read LevelDB, rows came back
 * out of order (a client that pairs rows with its documents by position paired them wrongly).
 *
 * `orderBulkDocs` puts an ordered wrapper in node's require cache where those packages find
 * pouchdb-bulkdocs-wrapper (the store bundle leaves that package to node's require for this);
 * call it before they load. A layout where it cannot be found keeps the package's own.
 */
import { createRequire } from 'node:module';
import { seed } from './lazy-http.ts';

type BulkArgs = { docs: Array<{ _id?: string }>; base?: object };
type Handler = (doc: { _id?: string }, args: BulkArgs) => Promise<unknown>;
type AllDocs = (opts?: unknown, callback?: unknown) => Promise<unknown>;

/**
 * The database as the checks of one `_bulk_docs` see it: the same, but an `allDocs` asked for
 * with the same options is read once. pouchdb-validation reads every design document of the
 * database for each document it checks (to find the `validate_doc_update` functions): for a
 * write of 25 documents, 25 reads of the same range. Every check of one write starts before
 * anything of it is written, so they all read the same answer either way; each gets its own
 * copy of it.
 */
export function readsOnce<T extends object>(base: T): T {
  const read = new Map<string, Promise<unknown>>();
  return new Proxy(base, {
    get(target, key) {
      const value = Reflect.get(target, key, target) as unknown;
      if (key !== 'allDocs' || typeof value !== 'function') return typeof value === 'function' ? value.bind(target) : value;
      const allDocs = value as AllDocs;
      return (opts?: unknown, callback?: unknown) => {
        if (callback !== undefined || typeof opts === 'function') return allDocs.call(target, opts, callback);
        const k = JSON.stringify(opts ?? null);
        let p = read.get(k);
        if (!p) read.set(k, p = allDocs.call(target, opts));
        return p.then((answer) => structuredClone(answer));
      };
    },
  });
}

type SecurityReader = { getSecurity?: () => Promise<unknown> };

/**
 * CouchDB hands a `validate_doc_update` the database's `_security` object on every write;
 * express-pouchdb reads it for a request only after its `_bulk_docs` route has answered, so
 * pouchdb-validation gave those functions `{}`. The checks of a write now get it, read once.
 */
function withSecurity(args: BulkArgs & { options?: { secObj?: unknown } }): Promise<void> {
  const options = args.options;
  const base = args.base as SecurityReader | undefined;
  if (!options || typeof options !== 'object' || options.secObj !== undefined || typeof base?.getSecurity !== 'function') return Promise.resolve();
  return base.getSecurity().then((secObj) => { if (options.secObj === undefined) options.secObj = secObj; }, () => undefined);
}

/** Checks each document with `handler`; writes the accepted ones; answers one row per document, in their order. */
export function orderedBulkDocsWrapper(handler: Handler, bulkDocs: () => Promise<unknown[]>, args: BulkArgs): Promise<unknown[]> {
  const docs = args.docs;
  const refused: unknown[] = new Array(docs.length);
  const checked = docs.length > 1 && args.base ? { ...args, base: readsOnce(args.base) } : args;
  return withSecurity(args).then(() => Promise.all(docs.map((doc, i) => handler(doc, checked).then(
    () => undefined,
    (err: { id?: string }) => { err.id = doc._id; refused[i] = err; },
  )))).then(() => {
    args.docs = docs.filter((_, i) => refused[i] === undefined);
    return bulkDocs();
  }).then((rows) => {
    // one row per written document (with new_edits=false only the failures come back: refused first, as before)
    if (rows.length !== args.docs.length) return [...refused.filter((r) => r !== undefined), ...rows];
    let next = 0;
    return docs.map((_, i) => (refused[i] !== undefined ? refused[i] : rows[next++]));
  });
}

const kUsers = ['pouchdb-validation', 'pouchdb-security', 'pouchdb-auth'];

export function orderBulkDocs(require: NodeJS.Require): void {
  const standIn = (handler: Handler) => orderedBulkDocsWrapper.bind(null, handler);
  for (const user of kUsers) {
    let file: string;
    try { file = createRequire(require.resolve(`${user}/package.json`)).resolve('pouchdb-bulkdocs-wrapper'); } catch { continue; }
    if (!require.cache[file]) seed(file, standIn);
  }
}
