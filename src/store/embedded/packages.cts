/**
 * The embedded store's packages, required by name with CommonJS `require`: the build bundles
 * them into dist/store-server.js (scripts/bundle.js), so the child does not
 * resolve and read several hundred files one by one at every start; from the sources they load
 * from node_modules. Called after the stand-ins of ./lazy-http.ts, ./lazy-find.ts and
 * ./lazy-express.ts are in node's require cache: the packages those replace stay outside the
 * bundle and are required through node, which finds the stand-ins.
 */

export function storePackages() {
  return {
    PouchDB: require('pouchdb-node'),
    pouchSecurity: require('pouchdb-security'),
    expressPouchDB: require('express-pouchdb'),
    /** express-pouchdb's own answers go through its utils.sendJSON: the same module as its routes'. */
    expressPouchUtils: require('express-pouchdb/lib/utils'),
    /** pouchdb-auth's session API, the one express-pouchdb's `_session` uses (./admin-auth.ts). */
    sessionApi: require('pouchdb-auth/lib/sessionapi'),
    /** the LevelDB binding PouchDB opens its databases with on disk (./read-ahead.ts). */
    leveldown: require('leveldown') as { prototype: object },
  };
}

/** PouchDB's memory adapter, for a store whose databases live in memory only. */
export function memoryAdapter() {
  return require('pouchdb-adapter-memory');
}
