/**
 * What the pool side and the thread side say to each other. Imports nothing but types,
 * so both sides can share it without the thread ever loading pool code.
 */
import type { MessagePort } from 'node:worker_threads';
import type { EmitCommand, LogLine, OutcomeError, WorkerMessage } from '../src/shared/message.ts';
import { headOf } from '../src/shared/output.ts';

/** piscina `workerData`: fixed for the life of a pool. */
export interface ThreadInit {
  /** where worker `require` resolves packages (the runtime's node_modules). */
  moduleRoot: string;
  couchUrl?: string;
  /** one Int32 per batch slot: how many items of that batch the thread has started. */
  progress: SharedArrayBuffer;
  /** BroadcastChannel name for retire/close notices to every thread. */
  channel: string;
  /** MB of external memory (Buffers, ArrayBuffers) the thread may hold: V8's heap limit does not count it. */
  externalMb: number;
}

/** Messages for one worker revision inside a batch. */
export interface TaskGroup {
  key: string;
  workerId: string;
  rev: string;
  file: string;
  delegate: string;
  env: Record<string, string>;
  couch: boolean;
  idleMs: number;
  /** the secrets the worker names, current when the batch was sent (`ctx.secrets`). */
  secrets?: Record<string, string>;
  /** each message as its JSON line: cheaper to send across threads than a structured clone, and what stdin delivers anyway. */
  items: { id: number; line: string }[];
}

/** thread → pool once, through piscina's channel when the thread starts: the port its batches come down. */
export interface Hello {
  lc: 'hello';
  threadId: number;
  port: MessagePort;
}

/** One batch down a thread's port: several messages, so a thread hop is paid once for many. */
export interface BatchTask {
  slot: number;
  groups: TaskGroup[];
}

export interface ItemOutcome {
  id: number;
  status: 'ok' | 'error';
  result?: unknown;
  error?: OutcomeError;
  logs: LogLine[];
}

/**
 * thread → pool, up the thread's port as its JSON text: what finished and what was emitted since
 * the last one. Text, because one string crosses threads as a copy of its bytes, where a
 * structured clone rebuilds every object of every outcome on the main thread (about twice
 * what JSON.parse costs); and because what a worker sends up ends as JSON anyway (the reply,
 * the activation record, the next worker's stdin), so each item is serialized once, on its
 * thread, where a value with no JSON form fails that item alone.
 */
export interface Outbox {
  done: ItemOutcome[];
  emits: [id: number, emit: EmitCommand][];
  /** the thread can no longer report outcomes, and says why: the pool replaces it. */
  fatal?: string;
  /** the thread holds more external memory than it may, and says how much: the pool replaces it. */
  memory?: string;
  /** worker code is ending the thread through the real process object: who, and the code. */
  exit?: { worker: string; code: number };
}

/** pool → every thread, through the BroadcastChannel. */
export type Notice =
  | { lc: 'retire'; workerId: string; currentRev?: string }
  | { lc: 'close' };

export const kMaxLogsPerMessage = 1000;
/** A log line longer than this many characters is cut (as process workers' output lines are). */
export const kMaxLogLineChars = 64 * 1024;

/**
 * A thread or isolate worker's log line, cut past kMaxLogLineChars and marked as a process
 * worker's line is; `cut`: already cut to that length (by the output's line splitter).
 */
export function cutLogLine(msg: string, cut = false): string {
  if (!cut && msg.length <= kMaxLogLineChars) return msg;
  return `${headOf(msg, kMaxLogLineChars)} … [line cut at ${kMaxLogLineChars} chars]`;
}
