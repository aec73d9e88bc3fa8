/**
 * The error catalogue. Every failure LivelyCouch reports carries a stable `code`
 * that callers match on, and the HTTP status it maps to when it reaches a client.
 */
export const ErrorCatalogue = {
  LC_BAD_JSON: { status: 400, message: 'request body is not valid JSON' },
  LC_BAD_REQUEST: { status: 400, message: 'bad request' },
  LC_UNAUTHORIZED: { status: 401, message: 'authentication required' },
  LC_FORBIDDEN: { status: 403, message: 'not allowed' },
  LC_NO_EVENT: { status: 404, message: 'no event matches' },
  LC_METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed for this event' },
  LC_BODY_TOO_LARGE: { status: 413, message: 'request body too large' },
  LC_QUEUE_FULL: { status: 503, message: 'dispatch queue is full' },
  LC_SHUTTING_DOWN: { status: 503, message: 'runtime is shutting down' },
  LC_NOT_PERSISTED: { status: 503, message: 'the trigger could not be stored, so it was not accepted' },
  LC_STORE_UNAVAILABLE: { status: 502, message: 'CouchDB is unavailable' },
  LC_INVALID_EVENT: { status: 400, message: 'invalid event document' },
  LC_INVALID_WORKER: { status: 400, message: 'invalid worker document' },
  LC_WORKER_NOT_FOUND: { status: 404, message: 'worker document not found' },
  LC_BUNDLE_FAILED: { status: 500, message: 'worker code could not be bundled' },
  LC_WORKER_ERROR: { status: 500, message: 'worker failed' },
  LC_WORKER_EXIT: { status: 500, message: 'worker exited' },
  LC_WORKER_TIMEOUT: { status: 504, message: 'worker timed out' },
  LC_WORKER_MEMORY: { status: 500, message: 'worker exceeded its memory limit' },
  LC_WORKER_RETIRED: { status: 503, message: 'worker was stopped' },
  LC_BAD_RESPONSE: { status: 500, message: "the worker's response is malformed" },
  LC_RESPONSE_TOO_LARGE: { status: 500, message: 'the response body is over the limit' },
  LC_UNKNOWN_TYPE: { status: 500, message: 'unknown worker type' },
  LC_INTERPRETER_MISSING: { status: 500, message: 'interpreter not installed' },
  LC_ISOLATE_UNAVAILABLE: { status: 500, message: 'no isolate engine loads on this Node' },
  LC_BAD_ATTACHMENT_NAME: { status: 400, message: 'attachment name not allowed' },
  LC_CHAIN_TOO_DEEP: { status: 508, message: 'event chain too deep' },
  LC_CONFIG: { status: 500, message: 'invalid configuration' },
  LC_DATA_DIR_IN_USE: { status: 409, message: 'the data directory is in use by another runtime' },
  LC_PORT_IN_USE: { status: 409, message: 'the port is in use' },
  LC_SECRET_MISSING: { status: 500, message: 'a secret the worker names is not set' },
  LC_BAD_SECRET: { status: 400, message: 'bad secret name or value' },
  LC_NOT_FOUND: { status: 404, message: 'no such path' },
  LC_NOT_RERUNNABLE: { status: 409, message: 'the activation cannot be fired again' },
  /** reported for a bug: the details go to the log, never to the client. */
  LC_INTERNAL: { status: 500, message: 'internal error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ErrorCatalogue;

export class LivelyError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details?: Record<string, unknown>;
  /** response headers the error is sent with besides its own (an event's CORS headers); not in its body. */
  headers?: Record<string, string>;

  constructor(code: ErrorCode, message?: string, details?: Record<string, unknown>) {
    super(message ?? ErrorCatalogue[code].message);
    this.name = 'LivelyError';
    this.code = code;
    this.status = ErrorCatalogue[code].status;
    if (details) this.details = details;
  }

  toJSON(): { error: ErrorCode; reason: string } & Record<string, unknown> {
    return { error: this.code, reason: this.message, ...(this.details ?? {}) };
  }
}

export function isLivelyError(err: unknown, code?: ErrorCode): err is LivelyError {
  return err instanceof LivelyError && (code === undefined || err.code === code);
}

/** A short, safe text for any thrown value. */
export function describeError(err: unknown): string {
  try {
    if (err instanceof Error) return err.message || err.name || 'Error';
    if (typeof err === 'string') return err;
    // JSON has no form for undefined, a symbol or a function: it gives undefined, not a text.
    const json = JSON.stringify(err);
    if (json !== undefined) return json;
  } catch { /* a cycle, a BigInt, or a getter that throws: the plainer forms below */ }
  try { return String(err); } catch { return Object.prototype.toString.call(err); }
}
