/**
 * Turning `ANY /_events/<rest>?<query>` into the request the runtime matches.
 * This is the hot path of every HTTP trigger: a string split instead of the
 * WHATWG URL parser, and the query parsed only when there is one.
 */
import type { IncomingMessage } from 'node:http';
import { parse as parseQueryString } from 'node:querystring';
import { LivelyError } from '../shared/errors.ts';
import { nestedDeeperThan } from '../shared/json.ts';
import type { HttpTriggerRequest } from './firer.ts';
import { parseBody, readBody, skipEmptyBody } from './body.ts';

export const kEventsPrefix = '/_events';

/**
 * `pathname` starts with "/_events". Returns the path after it, starting with
 * "/", with percent-escapes decoded (an escaped "/" becomes part of the path).
 */
export function eventPath(pathname: string): string {
  const rest = pathname.length <= kEventsPrefix.length + 1 ? '/' : pathname.slice(kEventsPrefix.length);
  if (rest.indexOf('%') === -1) return rest;
  try {
    return decodeURIComponent(rest);
  } catch {
    throw new LivelyError('LC_BAD_REQUEST', 'the path has invalid percent-encoding');
  }
}

/** Query parameters (repeated keys → arrays) and the `wait` flag, which is not a parameter. */
export function eventQuery(search: string): { query: Record<string, unknown>; wait: boolean } {
  if (search === '') return { query: {}, wait: false };
  // `?wait=true` alone is the commonest query: no parser, and the same empty query as none.
  if (search === 'wait=true' || search === 'wait=1') return { query: {}, wait: true };
  // querystring keeps a malformed escape as it is rather than throwing, like CouchDB does.
  const query = parseQueryString(search) as Record<string, unknown>;
  let wait = false;
  const flag = query.wait;
  if (flag !== undefined) {
    delete query.wait;
    const last = Array.isArray(flag) ? flag[flag.length - 1] : flag;
    wait = last === 'true' || last === '1';
  }
  return { query, wait };
}

/**
 * The request as the runtime matches it: a request without a body (most triggers) is
 * returned as it is, not through a promise; one with a body once it is read and parsed.
 * Throws (synchronously) LC_BAD_REQUEST for a bad path; a body's errors reject.
 */
export function readTriggerRequest(req: IncomingMessage, pathname: string, search: string, bodyLimit: number): HttpTriggerRequest | Promise<HttpTriggerRequest> {
  const path = eventPath(pathname);
  const { query, wait } = eventQuery(search);
  const method = req.method ?? 'GET';
  if (skipEmptyBody(req)) return { method, path, query, headers: req.headers, body: undefined, wait };
  return readBody(req, bodyLimit).then((buf) => (
    { method, path, query, headers: req.headers, body: parseBody(buf, req.headers['content-type']), wait }
  ));
}

/**
 * A query value as the message's `parameters` carry it: read as JSON when it is JSON (`?n=2` is
 * the number 2, `?on=true` true, `?tags=["a"]` a list), kept as the string otherwise — as the
 * original LivelyCouch did. `request.query` keeps the strings as sent.
 */
export function typedQueryValue(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(typedQueryValue);
  if (typeof v !== 'string' || v === '' || nestedDeeperThan(v)) return v;
  // Only what can start a JSON value is tried (cheaper, and nothing else is parsed).
  const c = v.charCodeAt(0);
  if (!(c === 45 /* - */ || (c >= 48 && c <= 57) || c === 34 /* " */ || c === 91 /* [ */ || c === 123 /* { */ || v === 'true' || v === 'false' || v === 'null')) return v;
  let parsed: unknown;
  try { parsed = JSON.parse(v); } catch { return v; }
  // 1e999 parses to Infinity, which JSON cannot carry on to a worker
  return typeof parsed === 'number' && !Number.isFinite(parsed) ? v : parsed;
}

/** Every query value typed (see typedQueryValue); a new object, the query itself untouched. */
export function typedQuery(query: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(query)) {
    Object.defineProperty(out, key, { value: typedQueryValue(query[key]), enumerable: true, writable: true, configurable: true });
  }
  return out;
}
