/** The typed internal model every event document form is parsed into. */

export type Methods = '*' | readonly string[]; // upper-case method names

export interface HttpTrigger {
  kind: 'http';
  /** pattern as written, e.g. "/emit_document/:db/:docid" or "/files/*". */
  path: string;
  methods: Methods;
  /** literal values must equal the message's parameter; ":name" binds it. */
  parameters: Record<string, unknown>;
}

export interface ChangesTrigger {
  kind: 'changes';
  db: string;
  selector?: Record<string, unknown>;
  includeDocs: boolean;
}

export interface ScheduleTrigger {
  kind: 'schedule';
  /** ms between ticks ("every": "1m"). */
  every?: number;
  /** five-field cron expression. */
  cron?: string;
  /** the cron's time zone: "UTC" (the default) or an IANA name. */
  tz?: string;
  /** ticks missed while no runtime ran: 1 fires the last of them once (the default), 0 none. */
  catchup?: 0 | 1;
}

export type Trigger = HttpTrigger | ChangesTrigger | ScheduleTrigger;

/** How often a failed (error or timeout) worker run is tried again, and after how long. */
export interface RetryPolicy {
  /** runs in all, the first included (1–10). */
  attempts: number;
  /** wait before the second attempt; doubled before each further one. */
  backoffMs: number;
}

export interface EventWorkerRef {
  name: string;
  /** the event's arguments for this worker (may hold ":name" / "*" placeholders). */
  arguments: Record<string, unknown>;
  /** present only when the worker entry has a "retry" (array form). */
  retry?: RetryPolicy;
  /** the entry's `"forward"` (array form): parameter names handed to the worker in its message. */
  forward?: readonly string[];
}

/** `{ roles }`: a user holding any of them (the document's `{ "role": "x" }` is read as `{ roles: ["x"] }`). */
export type EventAuth = 'public' | 'user' | 'admin' | { roles: readonly string[] };

export interface EventDef {
  id: string;
  rev?: string;
  triggers: readonly Trigger[];
  workers: readonly EventWorkerRef[];
  disabled: boolean;
  auth: EventAuth;
  /** `"durable": true`: an HTTP trigger is stored before it is acknowledged. Absent otherwise. */
  durable?: true;
  /** the worker whose result is the HTTP response (one of `workers`). Absent otherwise. */
  response?: string;
  /** who may call it from a page on another origin. Absent: no CORS headers. */
  cors?: CorsPolicy;
}

/** An event's `"cors"`, normalised: `"*"` is `{ origins: '*' }`. */
export interface CorsPolicy {
  origins: '*' | readonly string[];
  credentials: boolean;
  /** request headers a preflight allows; undefined: those the browser asks for. */
  headers?: readonly string[];
  /** response headers the page may read besides the CORS-safelisted ones. */
  expose: readonly string[];
  /** seconds a browser may keep a preflight's answer. */
  maxAge?: number;
}

export type ParseResult =
  | { ok: true; event: EventDef }
  /** `design: true` marks a design document (`_design/…`): not an event, skip it without listing it as invalid. */
  | { ok: false; id: string; reason: string; design?: true };

/** One event fired by one HTTP trigger, with what the trigger bound. */
export interface EventMatch {
  event: EventDef;
  trigger: HttpTrigger;
  /** path bindings (":db" → "db", "*" → "*") and bound trigger parameters, by name without ':'. */
  bindings: Record<string, unknown>;
}

export type MatchResult =
  | { kind: 'match'; matches: EventMatch[] }
  /** some pattern matched the path, none the method: 405 with the allowed methods. */
  | { kind: 'method'; allowed: string[] }
  | { kind: 'none' };
