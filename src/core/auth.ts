/**
 * Who is calling, and may they (per-event `auth`, the admin API): credentials are checked against
 * the store's own `_session`, so LivelyCouch keeps no user list. Accepted ones are cached briefly
 * under an HMAC made with a key of this start (no passwords, nothing to guess offline), refused
 * ones never; concurrent checks share one request; the runtime's own admin is known without
 * asking, so the admin API answers while the store is down. Statuses: docs/security.md.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { request } from 'undici';
import { LivelyError, describeError } from '../shared/errors.ts';
import type { EventAuth, EventDef } from '../events/model.ts';
import type { HttpRequestPart } from '../shared/message.ts';
import { basicAuthOf } from '../store/couch.ts';

export interface UserCtx {
  name: string | null;
  roles: readonly string[];
}

type Headers = HttpRequestPart['headers'];

export interface AuthorizerOptions {
  /** how long accepted credentials are trusted without asking the store again. */
  ttlMs?: number;
  /** distinct credentials kept; the oldest go first. */
  maxEntries?: number;
  /** how long one `_session` request may take. */
  timeoutMs?: number;
}

export interface Authorizer {
  /** The user the request's credentials belong to; null when it sent none. Throws 401 on refused ones. */
  authenticate(headers: Headers): Promise<UserCtx | null>;
  /** Throws LC_UNAUTHORIZED / LC_FORBIDDEN unless the caller may fire this event. */
  authorizeEvent(event: EventDef, headers: Headers): Promise<void>;
  /** Throws LC_UNAUTHORIZED / LC_FORBIDDEN unless the caller is a CouchDB admin. */
  authorizeAdmin(headers: Headers): Promise<void>;
  /** credentials currently cached (for specs and status). */
  readonly cached: number;
}

const kAdminRole = '_admin';

/** The `AuthSession` cookie alone: other cookies of the caller's are not credentials. */
function authSessionOf(cookie: string | string[] | undefined): string | undefined {
  if (cookie === undefined) return undefined;
  for (const header of Array.isArray(cookie) ? cookie : [cookie]) {
    for (const part of header.split(';')) {
      const eq = part.indexOf('=');
      if (eq !== -1 && part.slice(0, eq).trim() === 'AuthSession') return part.slice(eq + 1).trim();
    }
  }
  return undefined;
}

/** What credentials are known by: their HMAC under this authorizer's key, never the text. */
function digestOf(key: Buffer, authorization: string | undefined, session: string | undefined): Buffer {
  return createHmac('sha256', key).update(authorization ?? '').update('\0').update(session ?? '').digest();
}

/** The name and password of a Basic authorization header, undefined for anything else. */
export function basicOf(authorization: string | undefined): { name: string; password: string } | undefined {
  const m = authorization === undefined ? null : /^basic\s+(\S+)\s*$/i.exec(authorization);
  if (m === null) return undefined;
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  return colon === -1 ? undefined : { name: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** Compares without telling by its timing how much of the password was right. */
export function sameText(a: string, b: string): boolean {
  const key = randomBytes(32);
  return timingSafeEqual(createHmac('sha256', key).update(a).digest(), createHmac('sha256', key).update(b).digest());
}

function reasonOf(body: unknown): string {
  const reason = (body as { reason?: unknown } | null)?.reason;
  return typeof reason === 'string' && reason.length <= 200 ? reason : 'it answered 403';
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export function createAuthorizer(couchUrl: string, opts: AuthorizerOptions = {}): Authorizer {
  const ttlMs = opts.ttlMs ?? 5_000;
  const maxEntries = opts.maxEntries ?? 10_000;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const u = new URL(couchUrl);
  const sessionUrl = `${u.origin}${u.pathname.replace(/\/+$/, '')}/_session`;
  const accepted = new Map<string, { until: number; ctx: UserCtx }>();
  const asking = new Map<string, Promise<UserCtx>>();
  const hmacKey = randomBytes(32);
  // The runtime's own admin credentials, as the digest a Basic header carrying them gets.
  const own = u.username ? { digest: digestOf(hmacKey, basicAuthOf(u), undefined), password: decodeURIComponent(u.password), ctx: Object.freeze({ name: decodeURIComponent(u.username), roles: Object.freeze([kAdminRole]) }) } : undefined;

  async function ask(authorization: string | undefined, session: string | undefined): Promise<UserCtx> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (authorization !== undefined) headers.authorization = authorization;
    if (session !== undefined) headers.cookie = `AuthSession=${session}`;
    let status: number;
    let body: { userCtx?: { name?: unknown; roles?: unknown } };
    try {
      const res = await request(sessionUrl, { headers, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
      status = res.statusCode;
      body = (await res.body.json().catch(() => ({}))) as typeof body;
    } catch (err) {
      throw new LivelyError('LC_STORE_UNAVAILABLE', `the credentials could not be checked: ${describeError(err)}`);
    }
    if (status === 401) throw new LivelyError('LC_UNAUTHORIZED', 'the credentials were not accepted by CouchDB');
    // CouchDB 3.4+ locks a name out for a while after repeated failed logins: the caller is
    // refused, with CouchDB's reason; the store itself is fine.
    if (status === 403) throw new LivelyError('LC_FORBIDDEN', `CouchDB refuses these credentials for now: ${reasonOf(body)}`);
    if (status !== 200) throw new LivelyError('LC_STORE_UNAVAILABLE', `the credentials could not be checked: CouchDB answered ${status}`);
    const name = body.userCtx?.name;
    const roles = body.userCtx?.roles;
    // CouchDB ignores an expired or forged cookie and answers as if none was sent.
    if (typeof name !== 'string' && !(Array.isArray(roles) && roles.includes(kAdminRole))) {
      throw new LivelyError('LC_UNAUTHORIZED', 'the credentials were not accepted by CouchDB');
    }
    return Object.freeze({ name: typeof name === 'string' ? name : null, roles: Object.freeze(Array.isArray(roles) ? roles.filter((r): r is string => typeof r === 'string') : []) });
  }

  async function authenticate(headers: Headers): Promise<UserCtx | null> {
    const authorization = first(headers.authorization);
    const session = authSessionOf(headers.cookie);
    if (authorization === undefined && session === undefined) return null;
    const digest = digestOf(hmacKey, authorization, session);
    if (own && timingSafeEqual(digest, own.digest)) return own.ctx;
    // A wrong password for the runtime's own admin name is refused here: sent on, it would count
    // towards CouchDB's lockout of that name from this host, the runtime's own connection.
    const basic = session === undefined ? basicOf(authorization) : undefined;
    if (own && basic?.name === own.ctx.name) {
      if (sameText(basic.password, own.password)) return own.ctx;
      throw new LivelyError('LC_UNAUTHORIZED', 'the credentials were not accepted by CouchDB');
    }
    const key = digest.toString('base64');
    const now = Date.now();
    const hit = accepted.get(key);
    if (hit !== undefined) {
      if (hit.until > now) return hit.ctx;
      accepted.delete(key);
    }
    let pending = asking.get(key);
    if (pending === undefined) {
      pending = ask(authorization, session);
      asking.set(key, pending);
      pending.then((ctx) => {
        if (accepted.size >= maxEntries) {
          // Expired first; then the oldest entry (a Map iterates in insertion order).
          for (const [k, e] of accepted) if (e.until <= Date.now()) accepted.delete(k);
          if (accepted.size >= maxEntries) accepted.delete(accepted.keys().next().value!);
        }
        accepted.set(key, { until: Date.now() + ttlMs, ctx });
      }, () => undefined).finally(() => asking.delete(key));
    }
    return pending;
  }

  function allows(auth: EventAuth, ctx: UserCtx): boolean {
    if (ctx.roles.includes(kAdminRole) || auth === 'user' || auth === 'public') return true;
    if (auth === 'admin') return false;
    return auth.roles.some((r) => ctx.roles.includes(r));
  }

  function needs(auth: Exclude<EventAuth, 'public' | 'user'>): string {
    if (auth === 'admin') return 'a CouchDB admin';
    return auth.roles.length === 1 ? `the role ${JSON.stringify(auth.roles[0])}` : `one of the roles ${auth.roles.map((r) => JSON.stringify(r)).join(', ')}`;
  }

  return {
    authenticate,
    async authorizeEvent(event, headers) {
      const auth = event.auth;
      if (auth === 'public') return;
      const ctx = await authenticate(headers);
      if (ctx === null) throw new LivelyError('LC_UNAUTHORIZED', `event "${event.id}" needs CouchDB credentials (Basic auth or the AuthSession cookie)`);
      if (!allows(auth, ctx)) throw new LivelyError('LC_FORBIDDEN', `event "${event.id}" needs ${needs(auth as Exclude<EventAuth, 'public' | 'user'>)}`);
    },
    async authorizeAdmin(headers) {
      const ctx = await authenticate(headers);
      if (ctx === null) throw new LivelyError('LC_UNAUTHORIZED', 'the LivelyCouch admin API needs CouchDB admin credentials (Basic auth or the AuthSession cookie)');
      if (!ctx.roles.includes(kAdminRole)) throw new LivelyError('LC_FORBIDDEN', 'the LivelyCouch admin API needs a CouchDB admin');
    },
    get cached() { return accepted.size; },
  };
}
