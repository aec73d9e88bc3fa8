/**
 * Thread entry. piscina starts the thread and loads this module; the module opens a port of its
 * own and hands it to the pool (a `hello`), and batches come down that port from then on. A
 * batch is messages for one or more worker revisions; each revision is compiled once per thread
 * and instantiated lazily. Outcomes and emits go back up the port as they happen, coalesced per
 * turn of the event loop.
 *
 * This file is bundled on its own at dispatcher start and runs as plain JavaScript: it imports
 * only workers-runtime/* and src/shared/*, never the pool side.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { compileFunction } from 'node:vm';
import { BroadcastChannel, MessageChannel, parentPort, threadId, workerData } from 'node:worker_threads';
import { describeError } from '../../src/shared/errors.ts';
import { kTooDeep, nestedDeeperThan } from '../../src/shared/json.ts';
import type { BatchTask, Hello, ItemOutcome, Notice, TaskGroup, ThreadInit } from '../protocol.ts';
import { kFactoryParams, MessageRecord, WorkerInstance, type InstanceEnv, type ModuleFactory } from './instance.ts';
import { ExitSignal } from './simulated-process.ts';
import { bundleFileName, kFilePrefix } from '../stack.ts';
import { setImmediate, setInterval, toJson } from './intrinsics.ts';

const init = workerData as ThreadInit;
const progress = new Int32Array(init.progress);
const factories = new Map<string, ModuleFactory>();
const instances = new Map<string, WorkerInstance>();

const { port1: port, port2 } = new MessageChannel();
const hello: Hello = { lc: 'hello', threadId, port: port2 };
parentPort!.postMessage(hello, [port2]);
port.on('message', run);

/** Outcomes and emits since the last flush, each already its JSON text (see Outbox). */
let done: string[] = [];
let emits: string[] = [];
let flushScheduled = false;
/** Set when an outcome could not be turned into JSON at all: the thread must be replaced. */
let unreportable = false;

function schedule(): void {
  if (!flushScheduled) { flushScheduled = true; setImmediate(flush); }
}

function flush(): void {
  flushScheduled = false;
  // Built by hand: what made the outcome unreportable may break JSON.stringify for objects.
  const text = unreportable ? `{"done":[],"emits":[],"fatal":"worker code changed how this thread turns objects into JSON"}`
    : `{"done":[${done.join(',')}],"emits":[${emits.join(',')}]}`;
  done = [];
  emits = [];
  port.postMessage(text);
}

/**
 * An outcome's JSON text. A result with no JSON form (a BigInt, a cycle, a throwing toJSON)
 * fails its own message with the reason; functions and undefined fields are left out, as
 * JSON leaves them out wherever the result goes next. Undefined when even that fails, which
 * only worker code that changed Object.prototype.toJSON (or the like) can cause.
 */
function outcomeJson(outcome: ItemOutcome): string | undefined {
  let why: string;
  try {
    const text = toJson(outcome);
    if (typeof text !== 'string') return undefined;
    // The main thread would parse it, then fail to stringify it again for the reply and the record.
    if (!nestedDeeperThan(text)) return text;
    why = kTooDeep;
  } catch (e) {
    why = describeError(e);
  }
  try {
    const text = toJson({ ...outcome, result: undefined, status: 'error', error: { code: 'LC_WORKER_ERROR', message: `result cannot be sent: ${why}` } });
    if (typeof text === 'string') return text;
  } catch { /* below */ }
  return undefined;
}

let couchClient: unknown;
const env: InstanceEnv = {
  moduleRoot: init.moduleRoot,
  couch() {
    if (couchClient === undefined) {
      if (!init.couchUrl) throw new Error('the runtime has no CouchDB URL');
      couchClient = (createRequire(path.join(init.moduleRoot, 'package.json'))('nano') as (u: string) => unknown)(init.couchUrl);
    }
    return couchClient;
  },
  reporter: {
    done(_rec, outcome) {
      const text = outcomeJson(outcome);
      if (text === undefined) unreportable = true; else done.push(text);
      schedule();
    },
    emit(rec, emit) {
      let text: string | undefined;
      try {
        text = toJson([rec.id, emit]);
      } catch (e) {
        // Thrown to the worker's own emit() call, which can catch it; nothing else is touched.
        throw new TypeError(`emit("${emit.emit}"): its parameters cannot be sent as JSON: ${describeError(e)}`);
      }
      if (typeof text !== 'string') throw new TypeError(`emit("${emit.emit}"): its parameters have no JSON form`);
      if (nestedDeeperThan(text)) throw new TypeError(`emit("${emit.emit}"): its parameters are ${kTooDeep}`);
      emits.push(text);
      schedule();
    },
  },
  gone(inst) { if (instances.get(inst.key) === inst) instances.delete(inst.key); },
};

function factoryFor(g: TaskGroup): ModuleFactory {
  let f = factories.get(g.key);
  if (!f) {
    f = compileFunction(readFileSync(g.file, 'utf8'), kFactoryParams, { filename: bundleFileName(g.key) }) as ModuleFactory;
    factories.set(g.key, f);
  }
  return f;
}

function instanceFor(g: TaskGroup): WorkerInstance {
  let inst = instances.get(g.key);
  if (!inst || !inst.alive) {
    inst = new WorkerInstance(g, factoryFor(g), env);
    // The module's top level may already have exited or thrown asynchronously.
    if (inst.alive) { instances.set(g.key, inst); watchIdle(g.idleMs); }
  }
  return inst;
}

/** Starts every message of a batch, counting each in the batch's progress slot as it starts. */
function run(task: BatchTask): void {
  let seq = 0;
  for (const g of task.groups) {
    let inst: WorkerInstance | undefined;
    let loadError: unknown;
    try { inst = instanceFor(g); } catch (e) { loadError = e; }
    for (const item of g.items) {
      Atomics.store(progress, task.slot, ++seq);
      const rec = new MessageRecord(item.id, item.line, g.secrets);
      if (inst && inst.alive) { inst.deliver(rec); continue; }
      const message = loadError instanceof ExitSignal || !loadError ? `worker ended while loading (process.exit)` : `worker failed to load: ${describeError(loadError)}`;
      env.reporter.done(rec, { id: item.id, status: 'error', error: { code: loadError instanceof ExitSignal ? 'LC_WORKER_EXIT' : 'LC_WORKER_ERROR', message }, logs: rec.finalLogs() });
    }
  }
}

/** piscina's task handler: nothing is sent as a piscina task (batches come down the thread's port). */
export default function task(): never {
  throw new Error('LivelyCouch threads take their messages on their own port');
}

/** Which instance's code is on the stack of an error that escaped it. */
function culprit(err: unknown): WorkerInstance | undefined {
  const stack = err instanceof Error ? String(err.stack) : '';
  const i = stack.indexOf(kFilePrefix);
  if (i !== -1) {
    const m = /^[^:\s)]+/.exec(stack.slice(i + kFilePrefix.length));
    const inst = m && instances.get(decodeURIComponent(m[0]));
    if (inst) return inst;
  }
  const busy = [...instances.values()].filter((x) => x.busy);
  return busy.length === 1 ? busy[0] : undefined;
}

/**
 * Node reports some errors twice (one thrown in an fs callback reaches 'uncaughtException' a
 * second time after the first listener returned); the second report would find its instance
 * already gone and be logged as not attributable.
 */
const reported = new WeakSet<object>();
function firstReport(err: unknown): boolean {
  if (err === null || (typeof err !== 'object' && typeof err !== 'function')) return true;
  if (reported.has(err)) return false;
  reported.add(err);
  return true;
}

// Worker code must never take the thread down: an escaped error ends only its own instance.
process.on('uncaughtException', (err) => {
  if (err instanceof ExitSignal || !firstReport(err)) return;
  const inst = culprit(err);
  if (inst) inst.fault(err, 'uncaught exception');
  else process.stderr.write(`livelycouch thread: uncaught exception not attributable to a worker: ${describeError(err)}\n`);
});
process.on('unhandledRejection', (reason) => {
  if (reason instanceof ExitSignal || !firstReport(reason)) return;
  const inst = culprit(reason);
  if (inst) inst.fault(reason, 'unhandled rejection');
  else process.stderr.write(`livelycouch thread: unhandled rejection not attributable to a worker: ${describeError(reason)}\n`);
});

const channel = new BroadcastChannel(init.channel);
channel.unref();
channel.onmessage = (ev) => {
  const n = (ev as unknown as { data: Notice }).data;
  if (n.lc === 'retire') {
    for (const inst of [...instances.values()]) if (inst.workerId === n.workerId && inst.rev !== n.currentRev) retire(inst, true);
  } else if (n.lc === 'close') {
    for (const inst of [...instances.values()]) retire(inst, true);
  }
};

function retire(inst: WorkerInstance, dropCode: boolean): void {
  instances.delete(inst.key);
  if (dropCode) factories.delete(inst.key);
  inst.retire();
}

// Idle instances are checked at a pace that follows the shortest idle limit in use.
let sweepEvery = 0;
let sweep: NodeJS.Timeout | undefined;
function watchIdle(idleMs: number): void {
  const every = Math.max(20, Math.min(1000, Math.floor(idleMs / 4)));
  if (sweep && every >= sweepEvery) return;
  if (sweep) clearInterval(sweep);
  sweepEvery = every;
  sweep = setInterval(() => {
    const now = Date.now();
    for (const inst of [...instances.values()]) if (!inst.busy && now - inst.lastUsed >= inst.idleMs) retire(inst, false);
  }, every);
  sweep.unref();
}

/**
 * External memory (Buffers, ArrayBuffers) lives outside V8's heap, where the thread's resource
 * limits do not reach: checked here, ten times a second, against the thread's limit. Over it,
 * the thread says so and the pool replaces it (what it held fails with LC_WORKER_MEMORY).
 * A worker that allocates in one synchronous run is not seen until that run yields.
 */
const externalLimit = init.externalMb * 1024 * 1024;
let overReported = false;
const memoryCheck = setInterval(() => {
  const { external } = process.memoryUsage();
  if (external <= externalLimit || overReported) return;
  overReported = true;
  port.postMessage(`{"done":[],"emits":[],"memory":${toJson(`${Math.round(external / 1048576)} MB of Buffers and ArrayBuffers, limit ${init.externalMb} MB`)}}`);
}, 100);
memoryCheck.unref();

/**
 * Worker code can reach the thread's real process (Object.getPrototypeOf(process) is it) and
 * end the thread with a real exit, taking other workers' messages with it. Every exit goes
 * through reallyExit: the thread first tells the pool whose code it was, so those messages
 * name it.
 */
const realProcess = process as NodeJS.Process & { reallyExit?: (code?: number) => never };
const reallyExit = realProcess.reallyExit;
if (typeof reallyExit === 'function') {
  Object.defineProperty(realProcess, 'reallyExit', {
    configurable: false,
    writable: false,
    value: function exitingThread(code?: number): never {
      const inst = culprit(new Error('exit'));
      if (inst) {
        try { port.postMessage(`{"done":[],"emits":[],"exit":${toJson({ worker: inst.workerId, code: Number(code ?? realProcess.exitCode ?? 0) || 0 })}}`); } catch { /* it exits anyway */ }
      }
      return reallyExit.call(realProcess, code);
    },
  });
}
