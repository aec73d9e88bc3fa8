/**
 * JSON replies. Every answer LivelyCouch itself gives (as opposed to what the
 * proxy passes through from CouchDB) goes through here, so that an error is
 * always `{"error": code, "reason": message}` with the status of its code.
 */
import type { ServerResponse } from 'node:http';
import { LivelyError } from '../shared/errors.ts';


export function sendJson(res: ServerResponse, status: number, body: unknown, extra?: Record<string, string>): void {
  if (res.headersSent) {
    // A reply already started cannot be turned into an error; cutting the
    // connection is the only honest signal left.
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  };
  if (extra) Object.assign(headers, extra);
  res.writeHead(status, headers);
  res.end(text);
}

/** Maps anything thrown while handling a request to a JSON reply. */
export function sendError(res: ServerResponse, err: unknown, extra?: Record<string, string>): void {
  if (err instanceof LivelyError) {
    const headers: Record<string, string> = { ...extra };
    if (err.code === 'LC_QUEUE_FULL' || err.code === 'LC_SHUTTING_DOWN') headers['retry-after'] = '1';
    if (err.code === 'LC_UNAUTHORIZED') headers['www-authenticate'] = 'Basic realm="LivelyCouch"';
    const allow = err.details?.allow;
    if (err.code === 'LC_METHOD_NOT_ALLOWED' && Array.isArray(allow)) headers.allow = allow.join(', ');
    sendJson(res, err.status, err.toJSON(), headers);
    return;
  }
  // The details of a bug go to the log (the caller's job), not to the client.
  sendJson(res, 500, new LivelyError('LC_INTERNAL').toJSON(), extra);
}
