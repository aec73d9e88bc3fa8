/**
 * express-pouchdb installs pouchdb-find (`_find`, `_index`, `_explain`) when the store starts.
 * Loading it, with its own copies of PouchDB's map/reduce and utilities, took about 40 ms of
 * every store start on this project's machines, for routes most runtimes never call.
 *
 * `deferPouchFind` puts a stand-in for the copy express-pouchdb requires in the require cache:
 * a plugin with the same methods, each of which loads the real plugin on its first call and
 * runs its method on the same database with the same arguments (callback or promise alike).
 * A layout where it cannot be found keeps loading as before.
 */
import { createRequire } from 'node:module';
import { loadReal, seed } from './lazy-http.ts';

/** pouchdb-find's plugin methods, as PouchDB.plugin puts them on every database. */
const kMethods = ['createIndex', 'find', 'explain', 'getIndexes', 'deleteIndex'] as const;

type Plugin = Record<(typeof kMethods)[number], (this: unknown, ...a: unknown[]) => unknown>;

/** A stand-in for pouchdb-find as express-pouchdb requires it; call before express-pouchdb starts. */
export function deferPouchFind(require: NodeJS.Require): void {
  let file: string;
  try { file = createRequire(require.resolve('express-pouchdb/package.json')).resolve('pouchdb-find'); } catch { return; }
  if (require.cache[file]) return;
  let real: Plugin | undefined;
  const load = () => (real ??= loadReal(require, file) as unknown as Plugin);
  const standIn = {} as Plugin;
  for (const name of kMethods) {
    standIn[name] = function (this: unknown, ...args: unknown[]) { return load()[name].apply(this, args); };
  }
  seed(file, standIn);
}
