// Runs inside an isolate worker's sandbox, before its bundle (which follows it in the same
// script, wrapped as a CommonJS module): takes the bridge to the host off the global object,
// so worker code cannot call it directly, and gives the bundle its module object and require.
// The host (src/workers/dispatch/isolate.ts) loads this file as text; it is not a module.
const __bridge = { emit: globalThis.__lc_emit, log: globalThis.__lc_log, done: globalThis.__lc_done };
delete globalThis.__lc_emit; delete globalThis.__lc_log; delete globalThis.__lc_done;
const __module = { exports: {} };
const __helpers = new Map();
globalThis.require = function require(name) {
  if (name === 'livelycouch/worker') return __helpers.get(__current) || __helpers.values().next().value || {};
  throw new Error("require('" + name + "') is not available to isolate workers");
};
let __current;
