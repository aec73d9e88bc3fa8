/**
 * What the HTTP server needs from the runtime. The server parses the request
 * (URL, query, body, limits) and maps thrown LivelyErrors to their status;
 * the runtime matches, authorises and dispatches.
 */
import type { WorkerOutcome } from '../shared/message.ts';
import type { LivelyError } from '../shared/errors.ts';
import type { ActivationPage, ActivationQuery } from '../activations/reader.ts';

export interface HttpTriggerRequest {
  method: string;
  /** the path after "/_events", starting with "/", percent-decoded per segment. */
  path: string;
  query: Record<string, unknown>;
  headers: Record<string, string | string[] | undefined>;
  /** parsed JSON, form fields, raw text, or undefined when empty. */
  body: unknown;
  /** wait for the workers to finish (`?wait=true`). */
  wait: boolean;
}

export interface HttpTriggerReply {
  activation: string;
  events: string[];
  workers: string[];
  /** present when wait was requested. */
  outcomes?: WorkerOutcome[];
  /**
   * Sent instead of the JSON reply: a responding worker's response (or the runtime's answer to
   * an OPTIONS request), or the error that stands for it, its body naming the activation.
   */
  response?: WorkerResponse | LivelyError;
  /** headers whatever is sent carries (the event's CORS headers). */
  headers?: Record<string, string>;
}

/** A response ready to send: header names lower-case, the body as it goes on the wire. */
export interface WorkerResponse {
  status: number;
  headers: Record<string, string | string[]>;
  body: string | Buffer;
  /** the body's length in bytes. */
  length: number;
}

export interface EventFirer {
  /**
   * Throws (or rejects with) LivelyError LC_NO_EVENT (404), LC_METHOD_NOT_ALLOWED (405), LC_QUEUE_FULL (503),
   * LC_UNAUTHORIZED/LC_FORBIDDEN. May answer synchronously when nothing needs waiting for (the server's fast path).
   */
  fireHttp(req: HttpTriggerRequest): HttpTriggerReply | Promise<HttpTriggerReply>;
  health(): Promise<{ ok: boolean; store: boolean; [k: string]: unknown }>;
  status(): Promise<Record<string, unknown>>;
  /** Prometheus text exposition format (`/_lively/metrics`); optional for embedders. */
  metrics?(): Promise<string>;
  /** Activation records newest first, filtered, a page at a time (`GET /_lively/activations`); LC_BAD_REQUEST for a bad cursor. */
  activations?(query: ActivationQuery): Promise<ActivationPage>;
  /** One activation record (`GET /_lively/activations/<id>`); throws LC_NOT_FOUND. */
  activation?(id: string): Promise<unknown>;
  /**
   * Fires an activation's events again with its stored input (`POST /_lively/activations/<id>/rerun`).
   * Throws LC_NOT_FOUND (no such activation), LC_NOT_RERUNNABLE (its input was not kept), LC_NO_EVENT (an event is gone).
   */
  rerun?(id: string, wait: boolean): Promise<HttpTriggerReply>;
  /** The secrets (`/_lively/secrets`): names, set, remove; values never leave. */
  secrets?: {
    names(): string[];
    /** true when the secret was new; LC_BAD_SECRET for a bad name or value. */
    set(name: string, value: string): Promise<boolean>;
    /** false when it was not set. */
    remove(name: string): Promise<boolean>;
  };
}
