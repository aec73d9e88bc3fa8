/**
 * Which events a trigger fires: by path through the catalog's matcher, else by event id
 * (`/_events/<event_id>`, binding its trigger's `":name"` parameters), with the 404 and 405
 * a caller answers. Firing (./firing.ts) starts what matched.
 */
import { LivelyError } from '../shared/errors.ts';
import type { EventDef, EventMatch, HttpTrigger } from '../events/model.ts';
import type { EventCatalog } from './event-catalog.ts';
import type { FireInput } from './firing-types.ts';

/** The trigger of a match that no HTTP trigger made (changes, schedule, internal, by id). */
export const kAnyTrigger: HttpTrigger = { kind: 'http', path: '', methods: '*', parameters: {} };
export const kNoBindings: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;

/** A trigger path that matches wins; otherwise `byId` names the event. Throws LC_NO_EVENT / LC_METHOD_NOT_ALLOWED. */
export function matchInput(catalog: EventCatalog, input: FireInput, byId?: string): EventMatch[] {
  let result = catalog.matcher.match(input.method, input.path, input.params);
  if (result.kind === 'match') return result.matches;
  // HEAD is answered as GET (the server sends no body), unless a trigger names HEAD itself.
  if (input.method === 'HEAD') {
    result = catalog.matcher.match('GET', input.path, input.params);
    if (result.kind === 'match') return result.matches;
  }
  const ev = byId !== undefined ? catalog.get(byId) : undefined;
  if (ev && !ev.disabled) return [matchById(ev, input)];
  if (result.kind === 'method') {
    throw new LivelyError('LC_METHOD_NOT_ALLOWED', `${input.path} accepts ${result.allowed.join(', ')}, not ${input.method}`, { allow: result.allowed });
  }
  throw new LivelyError('LC_NO_EVENT', `no event is triggered by ${input.method} ${input.path}`);
}

/** Internal events are not HTTP requests: a trigger listening with any method receives them. */
export function matchInternal(catalog: EventCatalog, path: string, params: Record<string, unknown>): EventMatch[] | undefined {
  let result = catalog.matcher.match('POST', path, params);
  if (result.kind === 'method') result = catalog.matcher.match(result.allowed[0]!, path, params);
  return result.kind === 'match' ? result.matches : undefined;
}

/** The event's match for an input it matched before: by path, by id, or (changed since) as a whole. */
export function matchAgain(catalog: EventCatalog, ev: EventDef, input: FireInput): EventMatch {
  const result = catalog.matcher.match(input.method, input.path, input.params);
  const m = result.kind === 'match' ? result.matches.find((x) => x.event.id === ev.id) : undefined;
  if (m) return m;
  if (input.trigger === 'http') {
    try { return matchById(ev, input); } catch { /* no HTTP trigger takes the method any more */ }
  }
  return { event: ev, trigger: kAnyTrigger, bindings: kNoBindings };
}

export function matchById(ev: EventDef, input: FireInput): EventMatch {
  const http = ev.triggers.filter((t): t is HttpTrigger => t.kind === 'http');
  if (http.length === 0) return { event: ev, trigger: kAnyTrigger, bindings: kNoBindings };
  const takes = (t: HttpTrigger, method: string) => t.methods === '*' || t.methods.includes(method);
  const trigger = http.find((t) => takes(t, input.method)) ?? (input.method === 'HEAD' ? http.find((t) => takes(t, 'GET')) : undefined);
  if (!trigger) {
    const methods = [...new Set(http.flatMap((t) => (t.methods === '*' ? [] : [...t.methods])))];
    throw new LivelyError('LC_METHOD_NOT_ALLOWED', `event "${ev.id}" accepts ${methods.join(', ')}, not ${input.method}`, { allow: methods });
  }
  let bindings = kNoBindings;
  for (const [param, value] of Object.entries(trigger.parameters)) {
    const given = input.params[param];
    if (typeof value === 'string' && value.length > 1 && value[0] === ':' && (typeof given === 'string' || typeof given === 'number' || typeof given === 'boolean')) {
      if (bindings === kNoBindings) bindings = {};
      bindings[value.slice(1)] = String(given);
    }
  }
  return { event: ev, trigger, bindings };
}
