/**
 * Types for LivelyCouch worker authors: the message a worker receives for each kind of
 * trigger, the handler and its context, and the helper module `livelycouch/worker`.
 *
 * TypeScript:  import type { Handler } from 'livelycouch/worker';
 *              const handler: Handler<HttpMessage> = async (msg, ctx) => ({ ok: true });
 *              export default handler;
 * JavaScript:  /** @type {import('livelycouch/worker').Handler} *\/
 *              module.exports = async (msg, ctx) => ({ ok: true });
 */
declare module 'livelycouch/worker' {
  /** What fired the message. `event`: emitted by another worker; `lively`: the runtime's own lifecycle events. */
  export type TriggerKind = 'http' | 'changes' | 'schedule' | 'event' | 'lively';

  interface MessageBase {
    /** the activation this message belongs to (its id in `livelycouch logs`). */
    activation: string;
    /** the event document's id. */
    event: string;
    /** this worker's document id. */
    worker: string;
    trigger: TriggerKind;
    /** the HTTP method; `POST` for changes, schedule, emitted and lifecycle messages. */
    method: string;
    /** the HTTP path after `/_events`; for the others `/<db>/_changes`, `/_schedule`, `/<worker>/<name>`, `/lively/…`. */
    path: string;
    /** the event's `"forward"` for this worker: parameters it passes on. */
    forward?: string[];
    /** the worker document's `arguments`, overridden by the event's for this worker, bound values filled in. */
    arguments: Record<string, unknown>;
    /** the message's own parameters (query, body fields, path bindings), overlaid by `arguments`. */
    parameters: Record<string, unknown>;
  }

  /** An HTTP trigger: `ANY /_events/<path>`. */
  export interface HttpMessage extends MessageBase {
    trigger: 'http';
    request: {
      /** the query string as sent: every value a string (or a list of them when repeated). */
      query: Record<string, string | string[]>;
      /** request headers, lower-case; credentials (authorization, cookie) are never passed. */
      headers: Record<string, string | string[] | undefined>;
      /** parsed JSON, form fields or raw text; absent when the request has no body. */
      body?: unknown;
    };
  }

  /** A changes trigger: one message per change of the watched database. */
  export interface ChangesMessage extends MessageBase {
    trigger: 'changes';
    change: {
      id: string;
      /** CouchDB's sequence: opaque, never compare it as a number. */
      seq: string | number;
      changes: Array<{ rev: string }>;
      deleted?: boolean;
      /** with `"include_docs": true` in the trigger. */
      doc?: Record<string, unknown> & { _id: string; _rev: string };
    };
    parameters: Record<string, unknown> & { db: string; id: string; seq: string | number; deleted?: boolean; doc?: Record<string, unknown> };
  }

  /** A schedule trigger: one message per tick. */
  export interface ScheduleMessage extends MessageBase {
    trigger: 'schedule';
    tick: {
      /** the tick's time, ISO 8601 (UTC). */
      at: string;
      /** the schedule: ms between ticks (`"every"`), or the cron expression and its time zone. */
      every?: number;
      cron?: string;
      tz?: string;
      /** the last of ticks missed while no runtime ran (`"catchup": 1`). */
      catchUp?: boolean;
      /** how many ticks were missed, where that is cheap to know (`"every"`). */
      missed?: number;
    };
  }

  /** An event another worker emitted (`ctx.emit('sent', {...})` fires `/<worker>/sent`). */
  export interface EmittedMessage extends MessageBase {
    trigger: 'event';
  }

  /** The runtime's own events: `/lively/started`, `/lively/worker_error/<name>`, … */
  export interface LifecycleMessage extends MessageBase {
    trigger: 'lively';
  }

  export type Message = HttpMessage | ChangesMessage | ScheduleMessage | EmittedMessage | LifecycleMessage;

  export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

  /**
   * What an endpoint worker (an event with `"response": "<worker>"`) returns to shape the HTTP
   * response. A string body is sent as is, an object or array as JSON, binary as `bodyBase64`.
   */
  export interface HttpResponse {
    status?: number;
    headers?: Record<string, string | string[]>;
    body?: string | object | null;
    bodyBase64?: string;
  }

  /** A nano server scope (https://www.npmjs.com/package/nano): `couch.use('db').get(id)`. */
  export interface CouchClient {
    use<D = Record<string, unknown>>(db: string): {
      get(id: string, params?: Record<string, unknown>): Promise<D & { _id: string; _rev: string }>;
      insert(doc: D & { _id?: string; _rev?: string }, params?: Record<string, unknown> | string): Promise<{ ok: boolean; id: string; rev: string }>;
      destroy(id: string, rev: string): Promise<{ ok: boolean; id: string; rev: string }>;
      list(params?: Record<string, unknown>): Promise<{ rows: Array<{ id: string; key: string; value: { rev: string }; doc?: D }> }>;
      find(query: { selector: Record<string, unknown>; limit?: number; fields?: string[] }): Promise<{ docs: D[] }>;
      [more: string]: unknown;
    };
    db: { list(): Promise<string[]>; create(name: string): Promise<unknown>; [more: string]: unknown };
    [more: string]: unknown;
  }

  /** The second argument of a handler. */
  export interface Context<M extends Message = Message> {
    activation: string;
    message: M;
    arguments: M['arguments'];
    parameters: M['parameters'];
    /** a log line of this activation (`livelycouch logs`). */
    log(msg: unknown, level?: LogLevel): void;
    /** fires the event path `/<worker>/<name>` with these parameters. */
    emit(name: string, parameters?: Record<string, unknown>): void;
    /** a CouchDB client; only for workers whose document says `"couch": true`. */
    readonly couch: CouchClient;
    /** the secrets the worker document names, by name. */
    readonly secrets: Readonly<Record<string, string>>;
  }

  /** A worker's handler: `module.exports = handler` or `export default handler`; its result (or promise) ends the message. */
  export type Handler<M extends Message = Message, R = unknown> = (msg: M, ctx: Context<M>) => R | Promise<R>;

  /** The helper module, for workers that read stdin in the 2010 style. */
  export function emit(name: string, parameters?: Record<string, unknown>): void;
  export function log(msg: unknown, level?: LogLevel): void;
  /** process workers: marks the current message done with this result. */
  export function result(value: unknown): void;
  /**
   * process workers: runs `handler` for each message on stdin as a thread worker's handler is
   * run, the process declaring it takes up to `pipeline` messages at once (default 16).
   */
  export function serve(handler: Handler, options?: { pipeline?: number }): void;
  export const couch: CouchClient;
  /** thread workers: the context of the message this instance has held longest. */
  export function context(): Context | undefined;
}
