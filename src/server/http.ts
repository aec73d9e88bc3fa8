/**
 * The one HTTP server of LivelyCouch (node:http): `/_events/…` are triggers, `/_lively/health`
 * is open, the rest of `/_lively/…` is for CouchDB admins, everything else is proxied to
 * CouchDB. Routes, statuses and errors: docs/architecture.md ("The HTTP server's routes").
 */
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Config } from '../config/index.ts';
import type { Logger } from '../shared/logger.ts';
import { LivelyError, describeError } from '../shared/errors.ts';
import type { EventFirer, HttpTriggerReply, HttpTriggerRequest } from './firer.ts';
import { hasNoBody } from './body.ts';
import { createCouchProxy } from './proxy.ts';
import { TurnReplies, firedReplyJson, sendError, sendJson, sendJsonText, sendResponse } from './reply.ts';
import { kEventsPrefix, readTriggerRequest } from './trigger.ts';
import { handleActivations, kActivationsPath } from './activations.ts';
import { handleSecrets, kSecretsPath } from './secrets.ts';
import type { ConsoleRoutes } from './console.ts';

export interface LivelyServerOptions {
  config: Pick<Config, 'host' | 'port' | 'bodyLimit'>;
  firer: EventFirer;
  /** CouchDB origin; its credentials are never forwarded (the proxy strips them). */
  couchUrl: string;
  logger: Logger;
  /** Throws LC_UNAUTHORIZED / LC_FORBIDDEN unless the request carries CouchDB admin credentials. */
  authorizeAdmin: (headers: IncomingMessage['headers']) => Promise<void>;
  /** the web console's routes (console.ts), when the runtime serves one. */
  console?: ConsoleRoutes;
}

export interface LivelyServer {
  server: http.Server;
  listen(): Promise<{ port: number }>;
  close(): Promise<void>;
}

/**
 * Longer than the 60 s idle timeout of common clients and load balancers, so
 * that the server is not the side closing a connection a client is about to reuse.
 */
const kKeepAliveTimeout = 65_000;
/** How long close() lets open responses (feeds, slow workers) finish before cutting them. */
const kCloseGrace = 2_000;

const kLivelyPrefix = '/_lively';
/** The one own route anyone may call: load balancers and orchestrators probe it. */
const kPublicLivelyPath = '/_lively/health';

/** `pathname` is `prefix` or `prefix/…`. */
function under(pathname: string, prefix: string): boolean {
  return pathname.startsWith(prefix) && (pathname.length === prefix.length || pathname.charCodeAt(prefix.length) === 0x2f);
}

const kSafeMethods = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * A write to an admin route from a page of another origin is refused before any credentials
 * are looked at: a signed-in console's cookie would otherwise let any site the admin visits
 * rerun activations or set secrets (cross-site request forgery). Browsers say where a request
 * comes from in `Origin` (and `Sec-Fetch-Site`); the CLI and scripts send neither.
 */
function crossSiteWrite(req: IncomingMessage): boolean {
  if (kSafeMethods.has(req.method ?? 'GET')) return false;
  const site = req.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return true;
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  try {
    return origin === 'null' || new URL(origin).host !== req.headers.host;
  } catch {
    return true;
  }
}

export function createLivelyServer(opts: LivelyServerOptions): LivelyServer {
  const { config, firer, logger } = opts;
  const proxy = createCouchProxy(opts.couchUrl, logger);
  const accepted = new TurnReplies<IncomingMessage>((req, res, err) => fail(req, res, err));

  const lively: Record<string, (res: ServerResponse, query: URLSearchParams) => Promise<void>> = {
    '/_lively/health': async (res) => {
      let health: { ok: boolean } & Record<string, unknown>;
      try {
        health = await firer.health();
      } catch (err) {
        health = { ok: false, store: false, reason: describeError(err) };
      }
      sendJson(res, health.ok ? 200 : 503, health);
    },
    '/_lively/status': async (res) => sendJson(res, 200, await firer.status()),
    '/_lively/metrics': async (res) => {
      if (!firer.metrics) throw new LivelyError('LC_NOT_FOUND', 'this runtime has no metrics');
      const text = await firer.metrics();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    },
  };

  function fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    if (!(err instanceof LivelyError)) {
      logger.error('request failed', { method: req.method, url: req.url, error: describeError(err), stack: (err as Error)?.stack });
    }
    // A body left unread (too large, client gone) cannot be followed by another request.
    // A request without a body has nothing unread, even when it is answered before node
    // has marked it complete (a trigger refused synchronously).
    sendError(res, err, req.complete || hasNoBody(req.headers) ? undefined : { connection: 'close' });
  }

  function replyFired(req: IncomingMessage, res: ServerResponse, reply: HttpTriggerReply, wait: boolean): void {
    if (reply.response !== undefined) {
      if (reply.response instanceof LivelyError) sendError(res, reply.response, reply.headers);
      else sendResponse(res, reply.response, reply.headers);
      return;
    }
    const { text, bytes } = firedReplyJson(reply.activation, reply.events, reply.workers, reply.outcomes);
    if (wait) sendJsonText(res, 200, text, bytes, reply.headers);
    else accepted.accepted(req, res, text, bytes, reply.headers);
  }

  /**
   * A trigger without a body that the runtime answers at once is read, fired and answered
   * without a promise; a step that waits goes on once done. fail() answers what is thrown.
   */
  function trigger(req: IncomingMessage, res: ServerResponse, pathname: string, search: string): void {
    const request = readTriggerRequest(req, pathname, search, config.bodyLimit);
    if (request instanceof Promise) request.then((r) => fireTrigger(req, res, r), (err) => fail(req, res, err));
    else fireTrigger(req, res, request);
  }

  /** Never throws: what goes wrong is answered by fail(). */
  function fireTrigger(req: IncomingMessage, res: ServerResponse, request: HttpTriggerRequest): void {
    try {
      const reply = firer.fireHttp(request);
      if (reply instanceof Promise) reply.then((r) => replyFiredOrFail(req, res, r, request.wait), (err) => fail(req, res, err));
      else replyFired(req, res, reply, request.wait);
    } catch (err) {
      fail(req, res, err);
    }
  }

  function replyFiredOrFail(req: IncomingMessage, res: ServerResponse, reply: HttpTriggerReply, wait: boolean): void {
    try {
      replyFired(req, res, reply, wait);
    } catch (err) {
      fail(req, res, err);
    }
  }

  async function ownRoute(req: IncomingMessage, res: ServerResponse, pathname: string, search: string): Promise<void> {
    if (under(pathname, kActivationsPath)) return handleActivations(req, res, pathname, search, firer, config.bodyLimit);
    if (under(pathname, kSecretsPath)) return handleSecrets(req, res, pathname, firer, config.bodyLimit);
    if (opts.console?.serves(pathname)) return opts.console.handle(req, res, pathname, search);
    const route = lively[pathname];
    if (route === undefined) {
      throw new LivelyError('LC_NOT_FOUND', `no such path: ${pathname}`);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      throw new LivelyError('LC_METHOD_NOT_ALLOWED', `${pathname} accepts GET only`, { allow: ['GET', 'HEAD'] });
    }
    await route(res, new URLSearchParams(search));
  }

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    try {
      const url = req.url ?? '/';
      if (url.charCodeAt(0) !== 0x2f) throw new LivelyError('LC_BAD_REQUEST', 'the request target must be a path');
      const q = url.indexOf('?');
      const pathname = q === -1 ? url : url.slice(0, q);
      if (under(pathname, kEventsPrefix)) {
        trigger(req, res, pathname, q === -1 ? '' : url.slice(q + 1));
      } else if (under(pathname, kLivelyPrefix)) {
        if (crossSiteWrite(req)) throw new LivelyError('LC_FORBIDDEN', 'a write to /_lively from a page of another origin is refused');
        // Gated by prefix, so that every admin route, present or future, needs an admin.
        const open = pathname === kPublicLivelyPath || opts.console?.isPublic(pathname) === true;
        const allowed = open ? Promise.resolve() : opts.authorizeAdmin(req.headers);
        allowed.then(() => ownRoute(req, res, pathname, q === -1 ? '' : url.slice(q + 1)), (err) => {
          // a console page opened without signing in goes to the sign-in page
          if (!opts.console?.refused(req, res, pathname, err)) throw err;
        }).catch((err) => fail(req, res, err));
      } else {
        proxy.handle(req, res);
      }
    } catch (err) {
      fail(req, res, err);
    }
  }

  const server = http.createServer({ keepAlive: true }, onRequest);
  server.keepAliveTimeout = kKeepAliveTimeout;

  // Requests node cannot parse (garbage request line, header overflow, bad chunking)
  // still get a well-formed HTTP reply with a JSON body, then the connection closes.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const pending = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || (pending && pending.headersSent)) {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const body = JSON.stringify({ error: 'LC_BAD_REQUEST', reason: `malformed HTTP request (${err.code ?? 'unknown'})` });
    socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\n`
      + `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });

  return {
    server,
    listen: () => new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      server.once('error', onError);
      server.listen(config.port, config.host, () => {
        server.off('error', onError);
        const addr = server.address();
        resolve({ port: typeof addr === 'object' && addr ? addr.port : config.port });
      });
    }),
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // open console streams would otherwise hold the close for its whole grace
      opts.console?.close();
      server.closeIdleConnections();
      const cut = setTimeout(() => server.closeAllConnections(), kCloseGrace);
      // Ends proxied feeds at once; their clients see the connection close.
      await proxy.close();
      await closed;
      clearTimeout(cut);
    },
  };
}
