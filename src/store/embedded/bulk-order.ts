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

type Handler = (doc: { _id?: string }, args: { docs: Array<{ _id?: string }> }) => Promise<unknown>;

/** Checks each document with `handler`; writes the accepted ones; answers one row per document, in their order. */
export function orderedBulkDocsWrapper(handler: Handler, bulkDocs: () => Promise<unknown[]>, args: { docs: Array<{ _id?: string }> }): Promise<unknown[]> {
  const docs = args.docs;
  const refused: unknown[] = new Array(docs.length);
  return Promise.all(docs.map((doc, i) => handler(doc, args).then(
    () => undefined,
    (err: { id?: string }) => { err.id = doc._id; refused[i] = err; },
  ))).then(() => {
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
