/**
 * Every path that is not LivelyCouch's own is passed to CouchDB, so that an app
 * talks to one origin. Bodies stream both ways (a continuous `_changes` feed
 * arrives line by line), method, status and headers pass unchanged except the
 * hop-by-hop ones, and the client's own credentials go through while the
 * runtime's admin credentials in the CouchDB URL never do. A wrong password for the
 * runtime's admin name is refused here (CouchDB would lock that name out for the runtime too).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream';
import { Pool } from 'undici';
import type { Logger } from '../shared/logger.ts';
import { LivelyError, describeError } from '../shared/errors.ts';
import { sendError } from './reply.ts';
import { basicOf, sameText } from '../core/auth.ts';

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

/** The body of a `POST /_session` login, read to see whose it is; CouchDB's own limit is far larger. */
const kMaxLoginBody = 64 * 1024;

function readSmall(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => { size += c.length; if (size <= kMaxLoginBody) chunks.push(c); });
    req.on('end', () => resolve(size <= kMaxLoginBody ? Buffer.concat(chunks) : undefined));
    req.on('error', reject);
  });
}

/** The name and password of a `POST /_session` body, as JSON or as a form (CouchDB takes both). */
function loginOf(body: Buffer, contentType: string | undefined): { name?: unknown; password?: unknown } {
  const text = body.toString('utf8');
  if (/^application\/x-www-form-urlencoded/i.test(contentType ?? '')) {
    const form = new URLSearchParams(text);
    return { name: form.get('name') ?? undefined, password: form.get('password') ?? undefined };
  }
  try { return (JSON.parse(text) ?? {}) as { name?: unknown; password?: unknown }; } catch { return {}; }
}

const kWrongPassword = { error: 'unauthorized', reason: 'Name or password is incorrect.' };

function sendCouchJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'must-revalidate' });
  res.end(text);
}

export function createCouchProxy(couchUrl: string, logger: Logger): CouchProxy {
  const { origin, base } = upstreamOf(couchUrl);
  const admin = new URL(couchUrl).username ? { name: decodeURIComponent(new URL(couchUrl).username), password: decodeURIComponent(new URL(couchUrl).password) } : undefined;
  /** A wrong password for the runtime's own admin name: answered here as CouchDB would, never sent
   * on, where it would count towards CouchDB's lockout of that name from the runtime's host. */
  const wrongAdmin = (name: unknown, password: unknown) => admin !== undefined && name === admin.name && (typeof password !== 'string' || !sameText(password, admin.password));
  // No headers or body timeout: a continuous feed or a long poll legitimately
  // stays quiet for minutes; it ends when the client goes away.
  const pool = new Pool(origin, { headersTimeout: 0, bodyTimeout: 0 });

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const basic = basicOf(Array.isArray(req.headers.authorization) ? req.headers.authorization[0] : req.headers.authorization);
    if (basic && wrongAdmin(basic.name, basic.password)) {
      req.resume();
      sendCouchJson(res, 401, kWrongPassword);
      return;
    }
    if (admin !== undefined && req.method === 'POST' && (req.url ?? '').split('?')[0] === '/_session') {
      readSmall(req).then((body) => {
        if (body !== undefined) {
          const login = loginOf(body, req.headers['content-type']);
          if (wrongAdmin(login.name, login.password)) { sendCouchJson(res, 401, kWrongPassword); return; }
        }
        forward(req, res, body ?? Buffer.alloc(0));
      }, () => res.destroy());
      return;
    }
    forward(req, res, undefined);
  }

  function forward(req: IncomingMessage, res: ServerResponse, buffered: Buffer | undefined): void {
    const ac = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) ac.abort();
    });

    const headers = forwardHeaders(req.headers, connectionTokens(req.headers.connection));
    // CouchDB builds absolute URLs (Location) from X-Forwarded-Host, so they name this server.
    if (req.headers.host !== undefined && headers['x-forwarded-host'] === undefined) headers['x-forwarded-host'] = req.headers.host;
    // The client's own address last: CouchDB (trusting it from a local or private peer) then
    // counts failed logins, and locks out, per client rather than per runtime, and a client
    // cannot choose the address it is counted under.
    const peer = req.socket.remoteAddress;
    if (peer !== undefined) {
      const sent = headers['x-forwarded-for'];
      headers['x-forwarded-for'] = [...(sent === undefined ? [] : Array.isArray(sent) ? sent : [sent]), peer.replace(/^::ffff:/, '')].join(', ');
    }
    if (buffered !== undefined) {
      delete headers['transfer-encoding'];
      headers['content-length'] = String(buffered.length);
    }
    const hasBody = buffered !== undefined ? buffered.length > 0 : req.headers['transfer-encoding'] !== undefined
      || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');

    pool.request({
      origin,
      method: req.method as 'GET',
      path: base + req.url,
      headers,
      body: buffered !== undefined ? (hasBody ? buffered : null) : hasBody ? req : null,
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
