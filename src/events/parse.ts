/**
 * Event documents (both forms of DESIGN.md "Event documents") → EventDef.
 *
 * Validity is decided by the shared rules (./rules.ts), the same text the events
 * database's validate_doc_update runs, so a document is accepted or refused here for
 * the same reason the store gives on write. This file only normalises what passed.
 *
 * Design documents (`_design/…`) live in the events database but are not events:
 * they come back as `{ ok: false, design: true }` and the loader skips them silently
 * rather than listing them as invalid.
 */
import { describeError } from '../shared/errors.ts';
import { compiledRules, type CronFields } from './rules.ts';
import type { CorsPolicy, EventAuth, EventDef, EventWorkerRef, HttpTrigger, Methods, ParseResult, ScheduleTrigger, Trigger } from './model.ts';

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const hasOwn = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

export function isDesignDocId(id: string): boolean {
  return id.startsWith('_design/');
}

/** Never throws: any input yields a ParseResult. */
export function parseEventDoc(doc: unknown): ParseResult {
  let id = '(no _id)';
  try {
    if (isObj(doc) && typeof doc._id === 'string' && doc._id !== '') id = doc._id;
    if (isDesignDocId(id)) return { ok: false, id, reason: '_id: design documents are not events', design: true };
    const problem = compiledRules().eventProblem(doc);
    if (problem !== null) return { ok: false, id, reason: problem };
    return { ok: true, event: buildEvent(doc as Obj, id) };
  } catch (err) {
    // Only exotic values (proxies, throwing getters) get here; JSON documents never do.
    return { ok: false, id, reason: `document: could not be read (${describeError(err)})` };
  }
}

function buildEvent(doc: Obj, id: string): EventDef {
  const event: EventDef = {
    id,
    triggers: Object.freeze(buildTriggers(doc.trigger)),
    workers: Object.freeze(buildWorkers(doc.workers)),
    disabled: doc.disabled === true,
    auth: buildAuth(doc.auth),
  };
  if (typeof doc._rev === 'string') event.rev = doc._rev;
  if (doc.durable === true) event.durable = true;
  if (typeof doc.response === 'string') event.response = doc.response;
  if (doc.cors !== undefined) event.cors = buildCors(doc.cors);
  return Object.freeze(event);
}

function buildTriggers(t: unknown): Trigger[] {
  if (t === undefined) return [];
  if (Array.isArray(t)) {
    return t.map((e: Obj) => {
      if (hasOwn(e, 'path')) return httpTrigger(e.path as string, e);
      if (hasOwn(e, 'changes')) return changesTrigger(e.changes as Obj);
      return scheduleTrigger(e.schedule as Obj);
    });
  }
  return Object.entries(t as Obj).map(([key, spec]) => {
    if (key === 'changes') return changesTrigger(spec as Obj);
    if (key === 'schedule') return scheduleTrigger(spec as Obj);
    return httpTrigger(key, spec as Obj);
  });
}

function httpTrigger(path: string, spec: Obj): HttpTrigger {
  return { kind: 'http', path, methods: buildMethods(spec.method), parameters: { ...((spec.parameters as Obj | undefined) ?? {}) } };
}

function buildMethods(m: unknown): Methods {
  if (m === undefined) return '*';
  const list = (typeof m === 'string' ? [m] : (m as string[])).map((s) => s.toUpperCase());
  if (list.includes('*')) return '*';
  return Object.freeze([...new Set(list)]);
}

function changesTrigger(c: Obj): Trigger {
  const trigger: Trigger = { kind: 'changes', db: c.db as string, includeDocs: c.include_docs === true };
  if (c.selector !== undefined) trigger.selector = c.selector as Obj;
  return trigger;
}

function scheduleTrigger(s: Obj): Trigger {
  const rules = compiledRules();
  const trigger: ScheduleTrigger = hasOwn(s, 'every')
    ? { kind: 'schedule', every: rules.everyMs(s.every) as number }
    : { kind: 'schedule', cron: (s.cron as string).trim().split(/\s+/).join(' ') };
  if (typeof s.tz === 'string' && s.tz !== 'UTC') trigger.tz = s.tz;
  if (s.catchup === 0 || s.catchup === 1) trigger.catchup = s.catchup;
  return trigger;
}

function buildWorkers(w: unknown): EventWorkerRef[] {
  if (Array.isArray(w)) {
    return w.map((e: Obj) => {
      const ref: EventWorkerRef = { name: e.name as string, arguments: { ...((e.arguments ?? e.parameters ?? {}) as Obj) } };
      if (Array.isArray(e.forward)) ref.forward = Object.freeze([...(e.forward as string[])]);
      if (isObj(e.retry)) ref.retry = { attempts: e.retry.attempts as number, backoffMs: compiledRules().backoffMs(e.retry.backoff) as number };
      return ref;
    });
  }
  // The seed's object form: the value is the worker's arguments, all of it, so a "retry" key
  // there is an argument named retry. A retry policy needs the array form.
  return Object.entries(w as Obj).map(([name, args]) => ({ name, arguments: { ...(args as Obj) } }));
}

function buildCors(c: unknown): CorsPolicy {
  if (c === '*') return Object.freeze({ origins: '*', credentials: false, expose: Object.freeze([]) });
  const o = c as Obj;
  const policy: CorsPolicy = {
    origins: o.origins === '*' ? '*' : Object.freeze([...(o.origins as string[])]),
    credentials: o.credentials === true,
    expose: Object.freeze([...((o.expose as string[] | undefined) ?? [])]),
  };
  if (Array.isArray(o.headers)) policy.headers = Object.freeze([...(o.headers as string[])]);
  if (typeof o.maxAge === 'number') policy.maxAge = o.maxAge;
  return Object.freeze(policy);
}

function buildAuth(a: unknown): EventAuth {
  if (a === 'user' || a === 'admin') return a;
  if (isObj(a)) return { roles: Object.freeze(hasOwn(a, 'role') ? [a.role as string] : [...new Set(a.roles as string[])]) };
  return 'public';
}

/**
 * What a five-field cron expression allows, for the scheduler: minutes, hours, days of
 * month, months, days of week (0 = Sunday; 7 is folded into 0), each sorted. Names such as
 * `mon-fri` and `jan` are accepted. Validated by the same rules as the documents.
 */
export function parseCron(expr: string): { ok: true; fields: CronFields } | { ok: false; reason: string } {
  const r = compiledRules().cronFields(expr);
  return typeof r === 'string' ? { ok: false, reason: r } : { ok: true, fields: r };
}
