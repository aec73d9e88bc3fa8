/**
 * An event's `"cors"` as response headers (https://fetch.spec.whatwg.org/#http-cors-protocol).
 * An origin the policy does not list gets no Access-Control-* header at all, so the browser
 * keeps the response from the page; a request without an Origin is not a CORS request.
 */
import type { CorsPolicy } from '../events/model.ts';

type Headers = Record<string, string>;

function allowedOrigin(policy: CorsPolicy, origin: string | undefined): boolean {
  if (origin === undefined || origin === '') return false;
  return policy.origins === '*' || policy.origins.includes(origin);
}

/** The headers every answer to an allowed origin carries, or undefined for none. */
export function corsHeaders(policy: CorsPolicy, origin: string | undefined): Headers | undefined {
  const listed = policy.origins !== '*';
  if (!allowedOrigin(policy, origin)) return listed ? { vary: 'Origin' } : undefined;
  const h: Headers = {};
  if (listed) {
    h['access-control-allow-origin'] = origin!;
    // The answer depends on the Origin: a cache must not give one origin's to another.
    h.vary = 'Origin';
  } else {
    h['access-control-allow-origin'] = '*';
  }
  if (policy.credentials) h['access-control-allow-credentials'] = 'true';
  if (policy.expose.length > 0) h['access-control-expose-headers'] = policy.expose.join(', ');
  return h;
}

/**
 * A preflight's headers: the origin's, and the methods and request headers it may use. Without
 * a `headers` list, the headers the browser asks for are allowed (the origin is what is checked).
 */
export function preflightHeaders(policy: CorsPolicy, origin: string | undefined, allow: readonly string[], requested: string | undefined): Headers | undefined {
  const h = corsHeaders(policy, origin);
  if (h === undefined || h['access-control-allow-origin'] === undefined) return h;
  h['access-control-allow-methods'] = allow.join(', ');
  const headers = policy.headers ? policy.headers.join(', ') : requested?.trim();
  if (headers) h['access-control-allow-headers'] = headers;
  if (policy.maxAge !== undefined) h['access-control-max-age'] = String(policy.maxAge);
  return h;
}
