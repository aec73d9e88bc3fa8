/**
 * The thread's timer functions and JSON as they were before any worker code ran. Thread workers
 * share their thread's globals: one that replaces `globalThis.setImmediate` (a fake-timer
 * library, say) or `JSON.stringify` changes them for its own code, not for the runtime's
 * reporting of every worker's outcomes, nor for the timers other workers' modules are given.
 */
export const { setTimeout, setInterval, setImmediate, clearTimeout, clearInterval, clearImmediate } = globalThis;
export const { stringify: toJson, parse: fromJson } = JSON;
