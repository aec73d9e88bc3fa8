/**
 * A worker document at one revision, resolved into what a dispatcher needs.
 * Built by the registry from a CouchDB document with its attachments.
 */
export interface Attachment {
  contentType: string;
  data: Buffer;
}

export interface WorkerLimits {
  /** ms a single message may take before it is aborted. */
  timeout: number;
  /** MB of heap for the thread, isolate or process (undefined: dispatcher default). */
  memory?: number;
  /** messages of this worker in flight at once (processes kept for process workers, unless `processes` says fewer). */
  concurrency: number;
  /** process workers: processes kept at most (default `concurrency`); a process that declares pipelining holds several messages. */
  processes?: number;
  /** messages that may wait for a slot before more are refused (undefined: the runtime's maxWorkerQueue). */
  queue?: number;
  /** ms an unused warm instance is kept before its stdin ends. */
  idle: number;
}

export interface WorkerSpec {
  id: string;
  rev: string;
  /** node | isolate | python | sh | … */
  type: string;
  /** node workers: "thread" (default) or "process". */
  isolation: 'thread' | 'process';
  delegate: string;
  attachments: Record<string, Attachment>;
  /** defaults, overridden by an event's per-worker arguments. */
  arguments: Record<string, unknown>;
  limits: WorkerLimits;
  /** extra environment variables named by the document. */
  env: Record<string, string>;
  /** whether the worker asked for database access (`"couch": true`). */
  couch: boolean;
  /** process workers: the document says the worker acknowledges every message (`"ack": true`), so silence never ends one. */
  ack?: boolean;
  /** names of the secrets it is given (process: environment; thread and isolate: `ctx.secrets`). */
  secrets?: string[];
}

/** A stable key for one revision of one worker. */
export function specKey(spec: Pick<WorkerSpec, 'id' | 'rev'>): string {
  return `${spec.id}@${spec.rev}`;
}
