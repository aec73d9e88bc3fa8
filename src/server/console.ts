/**
 * The web console's routes. http.ts gates them as every /_lively route is gated (CouchDB admins
 * only), except the sign-in page and what it needs (kPublicPaths); a browser that opens a
 * console page without being signed in as an admin is sent to the sign-in page.
 *
 *   GET /_lively/ui/                 → the console (a page that loads app.js)
 *   GET /_lively/ui/signin           → the sign-in page (anyone)
 *   GET /_lively/ui/assets/<file>    → app.js (admins), signin.js and console.css (anyone)
 *   GET /_lively/stream              → server-sent events: history, tick (1/s), activations (batched);
 *                                      HEAD answers the headers alone
 *   GET /_lively/console/me          → the signed-in user's name and roles
 *   GET /_lively/console/events      → every event with its triggers and figures
 *   PUT /_lively/console/events/<id>/disabled {"disabled": bool}
 *                                     → 200 {"ok":true,"id","rev","disabled"}; 404 unknown event,
 *                                       400 a body that is not {"disabled": true|false} sent as
 *                                       application/json (a form posted from another site cannot be)
 *   GET /_lively/console/workers     → every worker document, summarised, with its figures
 *   GET /_lively/console/workers/<id> → one worker: its delegate's source and its attachments
 *   GET /_lively/console/store       → the databases the runtime uses, sizes, feeds, checkpoints
 *
 * Sign-in itself is CouchDB's: the page posts to `/_session` (proxied), which sets the
 * `AuthSession` cookie; the runtime checks that cookie like any credentials (core/auth.ts).
 * Nothing served here carries a secret: worker documents are summarised with the names of
 * their environment variables and secrets, never the values, and pages load no third-party
 * origin (Content-Security-Policy: 'self' only).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LivelyError, describeError } from '../shared/errors.ts';
import type { Runtime } from '../runtime.ts';
import type { Trigger } from '../events/model.ts';
import { nextTick } from '../triggers/schedule.ts';
import { dbInfo, statusOf, type DocumentScope } from '../store/couch.ts';
import { readBody } from './body.ts';
import { sendJson } from './reply.ts';
import { kPackageRoot, loadConsoleFiles, type ConsoleFile } from './console-build.ts';
import { ConsoleFeed } from './console-feed.ts';

export const kUiPath = '/_lively/ui';
export const kStreamPath = '/_lively/stream';
export const kConsoleApiPath = '/_lively/console';
const kSignInPath = '/_lively/ui/signin';
const kAssetsPath = '/_lively/ui/assets/';
/** What the sign-in page needs; everything else of the console needs an admin. */
const kPublicPaths = new Set([kSignInPath, `${kAssetsPath}signin.js`, `${kAssetsPath}console.css`]);
const kAssetTypes: Record<ConsoleFile, string> = { 'app.js': 'text/javascript; charset=utf-8', 'signin.js': 'text/javascript; charset=utf-8', 'console.css': 'text/css; charset=utf-8' };
/** A worker's source larger than this is not shown (its attachments are still listed). */
const kMaxSource = 256 * 1024;
const kStoreCheckMs = 5_000;

const kSecurityHeaders: Record<string, string> = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

function page(title: string, script: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>${title} · LivelyCouch</title>
<link rel="stylesheet" href="${kAssetsPath}console.css">
<script defer src="${kAssetsPath}${script}"></script>
</head>
<body>
<noscript><p>The LivelyCouch console needs JavaScript.</p></noscript>
<div id="root"></div>
</body>
</html>
`;
}

const kPages = { console: page('Console', 'app.js'), signin: page('Sign in', 'signin.js') };

export interface ConsoleRoutes {
  readonly feed: ConsoleFeed;
  /** Whether `pathname` belongs to the console (its pages, stream and API). */
  serves(pathname: string): boolean;
  /** The sign-in page and its assets: served to anyone. */
  isPublic(pathname: string): boolean;
  handle(req: IncomingMessage, res: ServerResponse, pathname: string, search: string): Promise<void>;
  /**
   * A console page asked for without an admin's credentials: the browser is sent to the
   * sign-in page. False for anything else (the caller answers with the error).
   */
  refused(req: IncomingMessage, res: ServerResponse, pathname: string, err: unknown): boolean;
  close(): void;
}

function under(pathname: string, prefix: string): boolean {
  return pathname.startsWith(prefix) && (pathname.length === prefix.length || pathname.charCodeAt(prefix.length) === 0x2f);
}

function requireMethod(req: IncomingMessage, pathname: string, allow: string[]): void {
  if (!allow.includes(req.method ?? 'GET')) {
    throw new LivelyError('LC_METHOD_NOT_ALLOWED', `${pathname} accepts ${allow.filter((m) => m !== 'HEAD').join(', ')} only`, { allow });
  }
}

function segment(s: string | undefined, what: string): string {
  try {
    const v = decodeURIComponent(s ?? '');
    if (v !== '') return v;
  } catch { /* reported below */ }
  throw new LivelyError('LC_BAD_REQUEST', `the ${what} in the path is not valid`);
}

/** A trigger as the Events page shows it. */
function describeTrigger(t: Trigger, feeds: Array<{ event: string; db: string; state: string; lag?: number }>, eventId: string, now: number): Record<string, unknown> {
  if (t.kind === 'http') return { kind: 'http', path: t.path, methods: t.methods === '*' ? ['*'] : t.methods };
  if (t.kind === 'changes') {
    const feed = feeds.find((f) => f.event === eventId && f.db === t.db);
    return { kind: 'changes', db: t.db, ...(feed ? { state: feed.state, ...(feed.lag !== undefined ? { lag: feed.lag } : {}) } : {}) };
  }
  const next = nextTick(t, now);
  return { kind: 'schedule', ...(t.every ? { every: t.every } : {}), ...(t.cron ? { cron: t.cron, tz: t.tz ?? 'UTC' } : {}), ...(next !== undefined ? { next } : {}) };
}

export function createConsoleRoutes(rt: Runtime): ConsoleRoutes {
  const feed = new ConsoleFeed(() => {
    let warm = 0;
    for (const d of rt.dispatchers) warm += d.stats().warm;
    return { queued: rt.firing.queued(), inFlight: rt.firing.inFlight, warm };
  });
  feed.start();
  let files: Promise<Record<ConsoleFile, Buffer>> | undefined;
  let storeTimer: NodeJS.Timeout | undefined;

  function checkStore(): void {
    rt.firer.health().then((h) => { feed.store = h.store; }, () => { feed.store = false; });
  }

  function sendText(res: ServerResponse, type: string, body: string | Buffer, cache: string): void {
    res.writeHead(200, { ...kSecurityHeaders, 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': cache });
    res.end(body);
  }

  async function asset(res: ServerResponse, name: string): Promise<void> {
    if (!(name in kAssetTypes)) throw new LivelyError('LC_NOT_FOUND', `no such console file: ${name}`);
    files ??= loadConsoleFiles(kPackageRoot).catch((err) => {
      files = undefined;
      throw new LivelyError('LC_INTERNAL', `the console could not be built: ${describeError(err)}`);
    });
    const all = await files;
    sendText(res, kAssetTypes[name as ConsoleFile], all[name as ConsoleFile], 'no-cache');
  }

  async function events(): Promise<unknown> {
    const now = Date.now();
    const feeds = rt.changesTriggers?.stats() ?? [];
    const out = [];
    for (const ev of rt.catalog.matcher.all()) {
      out.push({
        id: ev.id, rev: ev.rev, disabled: ev.disabled, auth: ev.auth, durable: ev.durable === true,
        workers: ev.workers.map((w) => w.name), response: ev.response,
        triggers: ev.triggers.map((t) => describeTrigger(t, feeds, ev.id, now)),
        ...feed.eventStats(ev.id),
      });
    }
    out.sort((a, b) => a.id.localeCompare(b.id));
    return { events: out, invalid: rt.catalog.invalid() };
  }

  async function setDisabled(req: IncomingMessage, id: string): Promise<unknown> {
    const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    // A form posted from another site cannot send JSON without the browser asking first.
    if (type !== 'application/json') throw new LivelyError('LC_BAD_REQUEST', 'the body must be JSON: {"disabled": true} or {"disabled": false}');
    const buf = await readBody(req, 4096);
    let body: unknown;
    try {
      body = JSON.parse(buf?.toString('utf8') ?? '');
    } catch {
      throw new LivelyError('LC_BAD_REQUEST', 'the body must be JSON: {"disabled": true} or {"disabled": false}');
    }
    const disabled = (body as { disabled?: unknown } | null)?.disabled;
    if (typeof disabled !== 'boolean' || Object.keys(body as object).length !== 1) {
      throw new LivelyError('LC_BAD_REQUEST', 'the body must be {"disabled": true} or {"disabled": false}');
    }
    const db = rt.db.events;
    // Another writer may change the document between reading and writing it: read again once.
    for (let attempt = 0; ; attempt++) {
      let doc: Record<string, unknown>;
      try {
        doc = await db.get(id) as Record<string, unknown>;
      } catch (err) {
        if (statusOf(err) === 404) throw new LivelyError('LC_NOT_FOUND', `no event "${id}"`);
        throw err;
      }
      if (disabled) doc.disabled = true;
      else delete doc.disabled;
      try {
        const r = await db.insert(doc);
        return { ok: true, id, rev: r.rev, disabled };
      } catch (err) {
        if (statusOf(err) !== 409 || attempt > 0) throw err;
      }
    }
  }

  async function workers(): Promise<unknown> {
    const all = await rt.db.workers.list({ include_docs: true });
    const loaded = new Map(rt.registry.loaded().map((w) => [w.id, w.rev]));
    // warm instances and their memory, summed over the dispatchers that hold the worker
    const held = new Map<string, { warm: number; memoryBytes?: number }>();
    for (const d of rt.dispatchers) {
      for (const [id, f] of d.workerStats?.() ?? []) {
        const h = held.get(id) ?? { warm: 0 };
        h.warm += f.warm;
        if (f.memoryBytes !== undefined) h.memoryBytes = (h.memoryBytes ?? 0) + f.memoryBytes;
        held.set(id, h);
      }
    }
    const invalid = new Map(rt.registry.invalid().map((w) => [w.id, w.reason]));
    const laneOf = (id: string): { inFlight: number; queued: number } => {
      const lane = rt.gate.lane(id);
      return { inFlight: lane.running, queued: lane.waiting };
    };
    const out = [];
    for (const row of all.rows) {
      if (row.id.startsWith('_design/') || !row.doc) continue;
      const doc = row.doc as Record<string, unknown>;
      const atts = (doc._attachments ?? {}) as Record<string, { content_type?: string; length?: number }>;
      out.push({
        id: row.id, rev: doc._rev, type: typeof doc.type === 'string' ? doc.type : 'node',
        isolation: doc.isolation === 'process' ? 'process' : 'thread', delegate: doc.delegate,
        attachments: Object.entries(atts).map(([name, a]) => ({ name, contentType: a.content_type, length: a.length })),
        // names only: values may be credentials
        env: Object.keys((doc.env ?? {}) as object), secrets: Array.isArray(doc.secrets) ? doc.secrets : [],
        loadedRev: loaded.get(row.id), problem: invalid.get(row.id),
        warm: held.get(row.id)?.warm ?? 0, memoryBytes: held.get(row.id)?.memoryBytes,
        ...laneOf(row.id),
        ...feed.workerStats(row.id),
      });
    }
    const dispatchers = rt.dispatchers.map((d) => d.stats()).map((s) => ({ name: s.name, warm: s.warm, inFlight: s.inFlight, ...(typeof s.queued === 'number' ? { queued: s.queued } : {}) }));
    const mem = process.memoryUsage();
    return { workers: out, dispatchers, memory: { rss: mem.rss, heapUsed: mem.heapUsed } };
  }

  async function worker(id: string): Promise<unknown> {
    let doc: Record<string, unknown>;
    try {
      doc = await rt.db.workers.get(id) as Record<string, unknown>;
    } catch (err) {
      if (statusOf(err) === 404) throw new LivelyError('LC_NOT_FOUND', `no worker "${id}"`);
      throw err;
    }
    const atts = (doc._attachments ?? {}) as Record<string, { content_type?: string; length?: number }>;
    const delegate = typeof doc.delegate === 'string' ? doc.delegate : undefined;
    let source: string | undefined;
    let sourceNote: string | undefined;
    const att = delegate === undefined ? undefined : atts[delegate];
    if (att === undefined) sourceNote = 'the document names no delegate attachment';
    else if ((att.length ?? 0) > kMaxSource) sourceNote = `the source is ${att.length} bytes, over the ${kMaxSource} shown`;
    else {
      const buf = await rt.db.workers.attachment.get(id, delegate!) as Buffer;
      source = buf.toString('utf8');
    }
    return {
      id, rev: doc._rev, type: typeof doc.type === 'string' ? doc.type : 'node', delegate,
      attachments: Object.entries(atts).map(([name, a]) => ({ name, contentType: a.content_type, length: a.length })),
      ...(source !== undefined ? { source } : { sourceNote }),
    };
  }

  async function store(): Promise<unknown> {
    const p = rt.config.dbPrefix;
    const names = new Set((await rt.nano.db.list()).filter((n) => n.startsWith(p)));
    const feeds = rt.changesTriggers?.stats() ?? [];
    for (const f of feeds) names.add(f.db);
    const dbs = await Promise.all([...names].sort().map(async (name) => {
      try {
        const info = await dbInfo(rt.nano, name);
        return { name, docs: info.doc_count, fileBytes: info.sizes?.file, activeBytes: info.sizes?.active };
      } catch (err) {
        return { name, error: describeError(err) };
      }
    }));
    const health = await rt.firer.health().catch(() => ({ ok: false, store: false }));
    return { store: { embedded: rt.store !== undefined, up: health.store, prefix: p }, databases: dbs, feeds };
  }

  async function api(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> {
    const parts = pathname.slice(kConsoleApiPath.length + 1).split('/');
    const [kind, id, sub] = parts;
    if (parts.length === 1 && kind === 'me') {
      requireMethod(req, pathname, ['GET', 'HEAD']);
      const { name, roles } = await rt.authorizer.authenticate(req.headers) ?? { name: null, roles: [] };
      return sendJson(res, 200, { name, roles });
    }
    if (kind === 'events' && parts.length === 1) {
      requireMethod(req, pathname, ['GET', 'HEAD']);
      return sendJson(res, 200, await events());
    }
    if (kind === 'events' && parts.length === 3 && sub === 'disabled') {
      requireMethod(req, pathname, ['PUT']);
      return sendJson(res, 200, await setDisabled(req, segment(id, 'event id')));
    }
    if (kind === 'workers' && parts.length === 1) {
      requireMethod(req, pathname, ['GET', 'HEAD']);
      return sendJson(res, 200, await workers());
    }
    if (kind === 'workers' && parts.length === 2) {
      requireMethod(req, pathname, ['GET', 'HEAD']);
      return sendJson(res, 200, await worker(segment(id, 'worker id')));
    }
    if (kind === 'store' && parts.length === 1) {
      requireMethod(req, pathname, ['GET', 'HEAD']);
      return sendJson(res, 200, await store());
    }
    throw new LivelyError('LC_NOT_FOUND', `no such path: ${pathname}`);
  }

  return {
    feed,
    serves: (pathname) => under(pathname, kUiPath) || pathname === kStreamPath || under(pathname, kConsoleApiPath),
    isPublic: (pathname) => kPublicPaths.has(pathname),
    async handle(req, res, pathname) {
      if (pathname === kStreamPath) {
        requireMethod(req, pathname, ['GET', 'HEAD']);
        if (req.method === 'HEAD') {
          res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store' });
          res.end();
          return;
        }
        if (!storeTimer) {
          checkStore();
          storeTimer = setInterval(() => (feed.open > 0 ? checkStore() : undefined), kStoreCheckMs);
          storeTimer.unref();
        }
        feed.attach(res);
        return;
      }
      if (under(pathname, kConsoleApiPath)) return api(req, res, pathname);
      requireMethod(req, pathname, ['GET', 'HEAD']);
      if (pathname === kUiPath) {
        res.writeHead(308, { location: `${kUiPath}/`, 'content-length': 0 });
        res.end();
        return;
      }
      if (pathname === `${kUiPath}/`) return sendText(res, 'text/html; charset=utf-8', kPages.console, 'no-store');
      if (pathname === kSignInPath) return sendText(res, 'text/html; charset=utf-8', kPages.signin, 'no-store');
      if (pathname.startsWith(kAssetsPath)) return asset(res, pathname.slice(kAssetsPath.length));
      throw new LivelyError('LC_NOT_FOUND', `no such console page: ${pathname}`);
    },
    refused(req, res, pathname, err) {
      const code = (err as LivelyError)?.code;
      if (!under(pathname, kUiPath) || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
      if (code !== 'LC_UNAUTHORIZED' && code !== 'LC_FORBIDDEN') return false;
      if (pathname.startsWith(kAssetsPath)) return false;
      const reason = code === 'LC_FORBIDDEN' ? '?reason=forbidden' : '';
      res.writeHead(303, { location: `${kSignInPath}${reason}`, 'content-length': 0, 'cache-control': 'no-store' });
      res.end();
      return true;
    },
    close() {
      clearInterval(storeTimer);
      feed.close();
    },
  };
}
