/**
 * Turning `ANY /_events/<rest>?<query>` into the request the runtime matches.
 * This is the hot path of every HTTP trigger: a string split instead of the
 * WHATWG URL parser, and the query parsed only when there is one.
 */
import type { IncomingMessage } from 'node:http';
import { parse as parseQueryString } from 'node:querystring';
import { LivelyError } from '../shared/errors.ts';
import type { HttpTriggerRequest } from './firer.ts';
import { parseBody, readBody } from './body.ts';

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

export async function readTriggerRequest(req: IncomingMessage, pathname: string, search: string, bodyLimit: number): Promise<HttpTriggerRequest> {
  const path = eventPath(pathname);
  const { query, wait } = eventQuery(search);
  const buf = await readBody(req, bodyLimit);
  const body = parseBody(buf, req.headers['content-type']);
  return { method: req.method ?? 'GET', path, query, headers: req.headers, body, wait };
}
