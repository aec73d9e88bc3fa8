/**
 * The one interface every execution backend implements: the thread pool (node),
 * child processes (python, sh, …, node with isolation "process") and isolates.
 * The runtime resolves an event into one WorkerMessage per worker and hands each
 * to the dispatcher that serves the worker's type.
 *
 * Contract:
 * - dispatch() never throws for worker faults: a crash, timeout, exit or bundling error
 *   resolves to an outcome with status 'error' or 'timeout' and `error.code`.
 *   It rejects only for runtime faults (closed dispatcher: LC_SHUTTING_DOWN).
 * - Per-worker concurrency and queueing are applied by the caller (WorkerGate);
 *   a dispatcher may assume at most `spec.limits.concurrency` messages of one worker at once.
 * - Emits are reported as they happen through `onEmit`, not only at the end.
 */
import type { EmitCommand, LogLine, WorkerMessage, WorkerOutcome } from '../shared/message.ts';
import type { WorkerSpec } from './revision.ts';

export interface DispatchContext {
  spec: WorkerSpec;
  message: WorkerMessage;
  onEmit: (emit: EmitCommand) => void;
  /**
   * The values of the secrets the worker names (`spec.secrets`), current for this message:
   * process workers get them as environment variables when their process starts, thread and
   * isolate workers as `ctx.secrets`. Never part of the message, its record or its outcome.
   */
  secrets?: Readonly<Record<string, string>>;
  /**
   * Output a worker wrote for this message after it was ended (a process worker ended by
   * silence): kept for the message's activation, never given to another message.
   */
  onLate?: (late: LateOutput) => void;
}

/** What a worker wrote for a message after the message was ended. */
export interface LateOutput {
  logs: LogLine[];
  result?: unknown;
}

export interface DispatcherStats {
  name: string;
  /** warm instances: loaded worker revisions (per thread), processes, isolates. */
  warm: number;
  inFlight: number;
  [k: string]: unknown;
}

export interface WorkerFigures {
  warm: number;
  memoryBytes?: number;
}

export interface Dispatcher {
  readonly name: string;
  /** Whether this dispatcher runs workers of this spec (type/isolation). */
  serves(spec: WorkerSpec): boolean;
  dispatch(ctx: DispatchContext): Promise<WorkerOutcome>;
  /**
   * A worker's document changed or was deleted: instances of revisions other than
   * `currentRev` finish their in-flight messages, then get stdin end and are dropped.
   */
  retire(workerId: string, currentRev?: string): Promise<void>;
  stats(): DispatcherStats;
  /**
   * Per worker id: its warm instances here and, where the dispatcher can tell one worker's
   * memory from another's, the bytes they hold (a process's RSS, an isolate's heap). Asked by
   * the console, not on the trigger path.
   */
  workerStats?(): Map<string, WorkerFigures>;
  /** Why this worker cannot run here (unknown type, interpreter not installed, …), for the status API. */
  problem?(spec: WorkerSpec): Error | undefined;
  /** Stops everything: stdin end to every instance, waits up to `deadlineMs`, then kills. */
  close(deadlineMs?: number): Promise<void>;
}
