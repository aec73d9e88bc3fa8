/**
 * Every path that is not LivelyCouch's own is passed to CouchDB, so that an app
 * talks to one origin. Bodies stream both ways (a continuous `_changes` feed
 * arrives line by line), method, status and headers pass unchanged except the
 * hop-by-hop ones, and the client's own credentials go through while the
 * runtime's admin credentials in the CouchDB URL never do.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream';
import { Pool } from 'undici';
import type { Logger } from '../shared/log.ts';
import { LivelyError, describeError } from '../shared/errors.ts';
import { sendError } from './reply.ts';

/** RFC 9110 7.6.1, plus `expect`, which the proxy answers itself (node sends 100 Continue). */
const kHopByHop = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection',
  'te', 'trailer', 'trailers', 'transfer-encoding', 'upgrade', 'expect', 'host', 'http2-settings',
]);

export interface CouchProxy {
  handle(req: IncomingMessage, res: ServerResponse): void;
  close(): Promise<void>;
}

/** The upstream origin and path prefix, without the userinfo of `couchUrl`. */
export function upstreamOf(couchUrl: string): { origin: string; base: string } {
  const u = new URL(couchUrl);
  return { origin: u.origin, base: u.pathname.replace(/\/+$/, '') };
}

function forwardHeaders(headers: IncomingMessage['headers'], remove: Set<string>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const key in headers) {
    const value = headers[key];
    if (value === undefined || kHopByHop.has(key) || remove.has(key)) continue;
    out[key] = value;
  }
  return out;
}

/** Headers named in `Connection` are hop-by-hop too. */
function connectionTokens(value: string | string[] | undefined): Set<string> {
  const out = new Set<string>();
  if (value === undefined) return out;
  for (const part of (Array.isArray(value) ? value.join(',') : value).split(',')) {
    const t = part.trim().toLowerCase();
    if (t) out.add(t);
  }
  return out;
}

export function createCouchProxy(couchUrl: string, logger: Logger): CouchProxy {
  const { origin, base } = upstreamOf(couchUrl);
  // No headers or body timeout: a continuous feed or a long poll legitimately
  // stays quiet for minutes; it ends when the client goes away.
  const pool = new Pool(origin, { headersTimeout: 0, bodyTimeout: 0 });

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const ac = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) ac.abort();
    });

    const headers = forwardHeaders(req.headers, connectionTokens(req.headers.connection));
    // CouchDB builds absolute URLs (Location) from X-Forwarded-Host, so they name this server.
    if (req.headers.host !== undefined && headers['x-forwarded-host'] === undefined) headers['x-forwarded-host'] = req.headers.host;
    const hasBody = req.headers['transfer-encoding'] !== undefined
      || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');

    pool.request({
      origin,
      method: req.method as 'GET',
      path: base + req.url,
      headers,
      body: hasBody ? req : null,
      signal: ac.signal,
    }).then((upstream) => {
      if (ac.signal.aborted) {
        upstream.body.destroy();
        return;
      }
      const out: Record<string, string | string[]> = {};
      const remove = connectionTokens(upstream.headers.connection);
      for (const key in upstream.headers) {
        const value = upstream.headers[key];
        if (value === undefined || kHopByHop.has(key) || remove.has(key)) continue;
        out[key] = value;
      }
      res.writeHead(upstream.statusCode, out);
      // A streamed reply (a continuous feed) may send nothing for a while: its
      // client should see the status at once rather than with the first line.
      if (out['content-length'] === undefined) res.flushHeaders();
      pipeline(upstream.body, res, (err) => {
        // The client leaving mid-stream is normal for feeds; pipeline has already
        // destroyed the upstream body, which aborts the upstream request.
        if (err && !ac.signal.aborted) logger.debug('proxy stream ended early', { path: req.url, error: describeError(err) });
      });
    }, (err: unknown) => {
      if (ac.signal.aborted) return;
      logger.warn('CouchDB request failed', { method: req.method, path: req.url, error: describeError(err) });
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // The request body may be half read; the connection cannot carry another request.
      const extra = hasBody && !req.complete ? { connection: 'close' } : undefined;
      const code = (err as { code?: unknown }).code;
      sendError(res, new LivelyError('LC_STORE_UNAVAILABLE', typeof code === 'string' ? `CouchDB is unavailable (${code})` : undefined), extra);
    });
  }

  return {
    handle,
    close: () => pool.destroy(),
  };
}
