/**
 * Completion for stdin-style workers that never acknowledge a message: the message is done
 * when every asynchronous resource its delivery started (transitively) has been destroyed.
 *
 * async_hooks cost is real (an init+destroy hook slows await-heavy code many times), so the
 * hook is enabled only while at least one stdin-style message is being tracked in this thread,
 * and handler-style workers never ask for it.
 */
import { AsyncResource, createHook, executionAsyncId } from 'node:async_hooks';
import { setImmediate } from './intrinsics.ts';

export interface Tracked {
  /** counted (non-promise) resources still alive. */
  pending: number;
  finished: boolean;
  onIdle: () => void;
}

const owners = new Map<number, Tracked>();
const counted = new Set<number>();
/** resources whose callback runs once: done at 'after', since destroy hooks can lag by seconds in an idle thread. */
const once = new Set<number>();
const kOnce = new Set(['Timeout', 'TickObject', 'Immediate', 'FSREQCALLBACK', 'Microtask']);
let tracking = 0;
/** set while the tracker itself schedules work, so its own timers are never owned. */
let internal = false;

const hook = createHook({
  init(id, type, trigger, resource) {
    if (internal) return;
    const owner = owners.get(trigger) ?? owners.get(executionAsyncId());
    if (owner === undefined || owner.finished) return;
    owners.set(id, owner);
    // Promises are only destroyed at GC, so they carry ownership but are never waited for.
    if (type !== 'PROMISE') {
      owner.pending++;
      counted.add(id);
      if (kOnce.has(type) && !(type === 'Timeout' && (resource as { _repeat?: unknown })._repeat)) once.add(id);
    }
  },
  after(id) {
    if (!once.delete(id)) return;
    const owner = owners.get(id);
    if (owner === undefined || !counted.delete(id)) return;
    if (--owner.pending === 0 && !owner.finished) checkSoon(owner);
  },
  destroy(id) {
    const owner = owners.get(id);
    if (owner === undefined) return;
    owners.delete(id);
    once.delete(id);
    if (!counted.delete(id)) return;
    if (--owner.pending === 0 && !owner.finished) checkSoon(owner);
  },
});

function checkSoon(t: Tracked): void {
  internal = true;
  try {
    setImmediate(() => { if (t.pending === 0 && !t.finished) t.onIdle(); });
  } finally { internal = false; }
}

/**
 * Starts tracking one message. It holds itself open until `runOwned` has run the code that
 * received it (the stdin 'data' emission), so a chunk buffered by the stream is waited for.
 */
export function track(onIdle: () => void): Tracked {
  const t: Tracked = { pending: 1, finished: false, onIdle };
  if (tracking++ === 0) hook.enable();
  return t;
}

/** Runs `fn` (the delivery of a message to the worker's code) with everything it starts owned by `t`. */
export function runOwned<R>(t: Tracked, fn: () => R): R {
  const root = new AsyncResource('LIVELY_MESSAGE', { requireManualDestroy: true });
  const rootId = root.asyncId();
  owners.set(rootId, t);
  try {
    return root.runInAsyncScope(fn);
  } finally {
    owners.delete(rootId);
    release(t);
  }
}

/** Drops the hold `track` took, for a message whose delivery ran outside `runOwned`. */
export function release(t: Tracked): void {
  if (--t.pending === 0 && !t.finished) checkSoon(t);
}

/** The message completed (or failed) by other means: stop waiting for its work. */
export function untrack(t: Tracked): void {
  if (t.finished) return;
  t.finished = true;
  if (--tracking === 0) {
    hook.disable();
    owners.clear();
    counted.clear();
    once.clear();
  }
}
