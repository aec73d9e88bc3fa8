/**
 * Filtered `_changes` that PouchDB would end the store's process on, answered as errors in
 * PouchDB's own filter step (after express-pouchdb has checked who may read the database):
 * - a filter not of the form `ddoc/name` (PouchDB reads `a/b/c` as no filter and answers 200
 *   with no JSON; a name without a slash it reads as `name/name`, as it always has);
 * - a filter or `_view` map function that does not compile, or a filter that does not evaluate
 *   to a function: PouchDB evaluates them in a callback, where the error is uncaught.
 * They get CouchDB's answers: `400 bad_request` for the name, `400 compilation_error` for the
 * function. A design document or function that does not exist is left to PouchDB (404).
 */
import { Script, runInNewContext } from 'node:vm';

interface ChangesHandler { db: { get(id: string): Promise<DesignDoc> } }
interface ChangesOpts { filter?: unknown; view?: unknown; complete(err: unknown): void }
interface FilterPlugin { normalize(opts: ChangesOpts): void; filter(handler: ChangesHandler, opts: ChangesOpts): void }

/** What a filter name PouchDB cannot read (`a/b/c`) becomes, so that the filter step refuses it rather than PouchDB ignoring it. */
const kMalformed = '\u0000malformed:';
const malformedName = () => storeError(400, 'bad_request', 'filter parameter must be of the form `designname/filtername`');
type DesignDoc = { filters?: Record<string, unknown>; views?: Record<string, { map?: unknown } | undefined> };

/** An error express-pouchdb answers as `{"error": name, "reason": message}` with `status`; shaped as PouchDB's own (`error: true`). */
function storeError(status: number, name: string, message: string): Error & { status: number } {
  return Object.assign(new Error(message), { name, status, error: true, reason: message });
}

/** Why PouchDB could not use this filter, or undefined when it can (or will answer 404 itself). */
async function problemWith(handler: ChangesHandler, opts: ChangesOpts): Promise<Error | undefined> {
  const isView = opts.filter === '_view';
  const spec = isView ? opts.view : opts.filter;
  const [ddoc, name, extra] = typeof spec === 'string' ? spec.split('/') : [];
  if (!ddoc || !name || extra !== undefined) return isView ? storeError(400, 'bad_request', '`view` filter parameter is not provided.') : malformedName();
  const doc = await handler.db.get(`_design/${ddoc}`).catch(() => undefined);
  const source = isView ? doc?.views?.[name]?.map : doc?.filters?.[name];
  if (typeof source !== 'string') return undefined;
  try {
    if (isView) {
      // PouchDB's own wrapper, compiled only: the map function runs per document, where its errors are caught.
      new Script(`(function(doc) {\n"use strict";\nvar emit = function () {};\nvar view = ${source};\nview(doc);\n})`);
      return undefined;
    }
    // As PouchDB evaluates it, bounded: a filter's top level is the design document's code.
    const fn: unknown = runInNewContext(`(function() {\n"use strict";\nreturn ${source}\n})()`, {}, { timeout: 1000 });
    if (typeof fn !== 'function') return storeError(400, 'compilation_error', `Expression does not eval to a function. (${source})`);
    return undefined;
  } catch (e) {
    const what = isView ? `the map function in the '${name}' view` : `the filter function '${ddoc}/${name}'`;
    return storeError(400, 'compilation_error', `Compilation of ${what} failed: ${(e as Error)?.message ?? String(e)}`);
  }
}

/** Wraps PouchDB's filter step (`PouchDB._changesFilterPlugin`, shared by every PouchDB class). */
export function guardChangesFilters(PouchDB: { _changesFilterPlugin?: FilterPlugin }): void {
  const plugin = PouchDB._changesFilterPlugin;
  if (!plugin) throw new Error('this PouchDB has no changes filter plugin to guard');
  const normalize = plugin.normalize.bind(plugin);
  plugin.normalize = (opts) => {
    const given = opts.filter;
    normalize(opts);
    // PouchDB turns `a/b/c` into no filter at all, and then answers 200 with no JSON.
    if (typeof given === 'string' && !given.startsWith('_') && !given.startsWith(kMalformed) && given.split('/').length > 2) opts.filter = kMalformed + given;
  };
  const filter = plugin.filter.bind(plugin);
  plugin.filter = (handler, opts) => {
    if (typeof opts.filter === 'string' && opts.filter.startsWith(kMalformed)) { opts.complete(malformedName()); return; }
    // _selector and _doc_ids filters are PouchDB's own and safe; functions come from design documents.
    if (typeof opts.filter !== 'string' || (opts.filter.startsWith('_') && opts.filter !== '_view')) { filter(handler, opts); return; }
    void problemWith(handler, opts).then((err) => { if (err) opts.complete(err); else filter(handler, opts); }, (err) => opts.complete(err));
  };
}
