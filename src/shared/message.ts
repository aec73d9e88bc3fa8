/** What a worker receives (one JSON line on stdin) and what comes back from it. */

export type TriggerKind = 'http' | 'event' | 'changes' | 'schedule' | 'lively';

export interface HttpRequestPart {
  query: Record<string, unknown>;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

/** The message envelope, exactly as DESIGN.md "What a worker receives". */
export interface WorkerMessage {
  activation: string;
  event: string;
  worker: string;
  trigger: TriggerKind;
  method?: string;
  path?: string;
  arguments: Record<string, unknown>;
  parameters: Record<string, unknown>;
  /** the worker entry's `"forward"`: names of parameters the worker passes on (the original LivelyCouch's). */
  forward?: readonly string[];
  request?: HttpRequestPart;
  change?: unknown;
  tick?: unknown;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface LogLine {
  t: number; // ms since epoch
  level: LogLevel;
  msg: string;
}

/** `{"emit": "sent", "parameters": {…}}` from a worker: fires `/<worker>/sent`. */
export interface EmitCommand {
  emit: string;
  parameters: Record<string, unknown>;
}

export type ActivationStatus = 'ok' | 'error' | 'timeout';

/** Why a worker's handling of a message failed: a stable code and a reason, and where known the stack of a thrown error or how a process ended. */
export interface OutcomeError {
  code: string;
  message: string;
  /** a thread or isolate worker's thrown error, its stack (at most 4 KiB). */
  stack?: string;
  /** a process worker that ended: its exit code (null when a signal ended it) and the signal. */
  exitCode?: number | null;
  signal?: string | null;
}

/** How one worker's handling of one message ended. */
export interface WorkerOutcome {
  worker: string;
  status: ActivationStatus;
  result?: unknown;
  error?: OutcomeError;
  logs: LogLine[];
  durationMs: number;
  /** runs made, the first included; present when the event gives this worker a retry policy. */
  attempts?: number;
}

/** An outcome's `durationMs` to the microsecond: what a timer this fine can tell, and short in JSON (0.412, not 0.41199999999999). */
export function microseconds(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
