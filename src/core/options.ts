/**
 * `OPTIONS` to an event's path: a browser's CORS preflight, or a client asking what the path
 * allows. Neither may run a worker, so the runtime answers it from the triggers, unless a
 * trigger names `OPTIONS` itself (then it is that event's request like any other).
 */
import type { CorsPolicy, EventDef, HttpTrigger } from '../events/model.ts';
import type { EventCatalog } from './event-catalog.ts';

export interface OptionsAnswer {
  /** the methods the path takes, for `Allow` and `Access-Control-Allow-Methods`. */
  allow: string[];
  /** the first matching event's policy that has one. */
  cors?: CorsPolicy;
}

/** What "any method" allows, as an Allow header lists it. */
const kAnyMethod = ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT'];

export function optionsAnswer(routes: ReadonlyArray<{ event: EventDef; trigger: HttpTrigger }>): OptionsAnswer | undefined {
  if (routes.length === 0) return undefined;
  const allow = new Set<string>(['OPTIONS']);
  let cors: CorsPolicy | undefined;
  for (const { event, trigger } of routes) {
    if (trigger.methods !== '*' && trigger.methods.includes('OPTIONS')) return undefined;
    cors ??= event.cors;
    for (const m of trigger.methods === '*' ? kAnyMethod : trigger.methods) allow.add(m);
  }
  // HEAD is answered as GET.
  if (allow.has('GET')) allow.add('HEAD');
  const answer: OptionsAnswer = { allow: [...allow].sort() };
  if (cors) answer.cors = cors;
  return answer;
}

/**
 * The answer to an `OPTIONS` of `path` (or of the event `byId`, when no trigger path matches);
 * undefined: fire it as any other request (a trigger names OPTIONS), or nothing matches (404).
 */
export function optionsFor(catalog: EventCatalog, path: string, byId?: string): OptionsAnswer | undefined {
  let routes = catalog.matcher.routesFor(path);
  if (routes.length === 0 && byId !== undefined) {
    const ev = catalog.get(byId);
    if (ev && !ev.disabled) {
      const http = ev.triggers.filter((t): t is HttpTrigger => t.kind === 'http');
      routes = http.length > 0 ? http.map((trigger) => ({ event: ev, trigger })) : [{ event: ev, trigger: kAnyTrigger }];
    }
  }
  return optionsAnswer(routes);
}

const kAnyTrigger: HttpTrigger = { kind: 'http', path: '', methods: '*', parameters: {} };
