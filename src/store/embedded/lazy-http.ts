/**
 * PouchDB's http adapter is for remote databases (`_replicate` to or from a URL), which most
 * embedded stores never open. Yet its HTTP client is loaded with pouchdb-node and with
 * express-pouchdb's `_find`: node-fetch and fetch-cookie, which brings tough-cookie and the
 * public suffix list, about 100 ms of the store's start, on the path of every `npm start`.
 *
 * `deferPouchHttp` puts stand-ins for each copy of those two packages in the require cache,
 * before PouchDB is loaded. A stand-in loads its package on first use: the first request to a
 * remote database. pouchdb-fetch touches no more of them at load than the fetch function (wrapped
 * by fetch-cookie) and `Headers`; `new Headers(…)` through a stand-in builds the package's own.
 * A copy that cannot be found (another layout of node_modules) keeps loading as before.
 */
import Module, { createRequire } from 'node:module';

type Loaded = Record<string, unknown> & ((...a: unknown[]) => unknown);

/** The packages that require node-fetch and fetch-cookie when loaded, each with its copies. */
const kRequirers = [
  'pouchdb-node',
  'pouchdb-fetch',
  'pouchdb-find/node_modules/pouchdb-fetch',
  'pouchdb-abstract-mapreduce/node_modules/pouchdb-fetch',
];

const cache = (Module as unknown as { _cache: Record<string, unknown> })._cache;

/** A module in the require cache whose exports are `exports`. */
export function seed(file: string, exports: unknown): void {
  const m = new (Module as unknown as new (id: string) => { filename: string; loaded: boolean; exports: unknown })(file);
  m.filename = file;
  m.loaded = true;
  m.exports = exports;
  cache[file] = m;
}

/** Loads the real module at `file` in place of its stand-in. */
export function loadReal(require: NodeJS.Require, file: string): Loaded {
  delete cache[file];
  return require(file) as Loaded;
}

/** A class whose `new` builds an instance of the real package's class. */
function lazyClass(name: string, real: () => Loaded): unknown {
  const C = function (this: unknown, ...args: unknown[]) {
    const Real = real()[name] as new (...a: unknown[]) => object;
    return new Real(...args);
  };
  Object.defineProperty(C, 'name', { value: name });
  return C;
}

function deferCopy(require: NodeJS.Require, fetchFile: string, cookieFile: string | undefined): void {
  let realFetch: Loaded | undefined;
  const loadFetch = () => (realFetch ??= loadReal(require, fetchFile));
  const standIn = function fetch(...args: unknown[]) { return loadFetch()(...args); } as unknown as Loaded;
  standIn.default = standIn;
  for (const name of ['Headers', 'Request', 'Response']) standIn[name] = lazyClass(name, loadFetch);
  Object.defineProperty(standIn, 'FetchError', { get: () => loadFetch().FetchError, enumerable: true });
  seed(fetchFile, standIn);
  if (cookieFile === undefined) return;
  let realCookie: Loaded | undefined;
  const loadCookie = () => {
    if (!realCookie) {
      // fetch-cookie 2 exports its function as `default`, 0.x as the module itself
      const m = loadReal(require, cookieFile) as unknown as Loaded | { default: Loaded };
      realCookie = typeof m === 'function' ? m : m.default;
    }
    return realCookie;
  };
  seed(cookieFile, function fetchCookie(fetch: unknown, ...rest: unknown[]) {
    let wrapped: Loaded | undefined;
    return (...args: unknown[]) => {
      wrapped ??= loadCookie()(fetch === standIn ? loadFetch() : fetch, ...rest) as Loaded;
      return wrapped(...args);
    };
  });
}

/** Stand-ins for PouchDB's HTTP client packages; call before PouchDB is loaded. */
export function deferPouchHttp(require: NodeJS.Require): void {
  const done = new Set<string>();
  for (const requirer of kRequirers) {
    let from: NodeJS.Require;
    try { from = createRequire(require.resolve(`${requirer}/package.json`)); } catch { continue; }
    let fetchFile: string;
    try { fetchFile = from.resolve('node-fetch'); } catch { continue; }
    if (done.has(fetchFile) || cache[fetchFile]) continue;
    done.add(fetchFile);
    let cookieFile: string | undefined;
    try { cookieFile = from.resolve('fetch-cookie'); } catch { cookieFile = undefined; }
    if (cookieFile !== undefined && (done.has(cookieFile) || cache[cookieFile])) cookieFile = undefined;
    if (cookieFile !== undefined) done.add(cookieFile);
    deferCopy(require, fetchFile, cookieFile);
  }
}
