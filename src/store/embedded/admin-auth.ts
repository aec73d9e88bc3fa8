/**
 * express-pouchdb authenticates every request from scratch. A request with Basic credentials
 * costs pouchdb-auth's `multiUserLogIn` (a read of the user's document, PBKDF2, an HMAC) and then
 * `multiUserSession` (the database's info, the document again, two HMACs), on every request the
 * runtime makes (activation records, the durable journal, feeds and checkpoints), and the runtime
 * is the store's busiest client. Kept as below, a write costs the store 0.4 to 1.1 ms less CPU
 * (`npm run bench:store`, docs/benchmarks.md).
 *
 * `rememberAdminLogins` keeps, for a few seconds, what those two functions answered for the
 * store's own admin, whose name and password the store was started with:
 *  - a log-in with exactly that name and password (compared in constant time) gets the answer
 *    the real function gave the last time, session id included, for `ttlMs`;
 *  - a session id the real function verified as the admin's gets the same answer again, for
 *    `ttlMs` and never past the moment the session itself expires (`timeoutS` after it was issued).
 * Everything else (other users, a wrong password, another session id, cookies) goes to the
 * real functions, so every decision is the one pouchdb-auth makes; a changed `admins` section
 * of the configuration forgets what was kept (`forget`).
 */
import { createHash, timingSafeEqual } from 'node:crypto';

type Callback = (err: unknown, value?: unknown) => void;
type LogIn = (this: object, name: unknown, password: unknown, callback?: Callback) => Promise<unknown>;
type Session = (this: object, sessionId: unknown, callback?: Callback) => Promise<unknown>;

/** pouchdb-auth's lib/sessionapi.js: its functions are bound onto the users database when it is set up. */
export interface SessionApi {
  multiUserLogIn: LogIn;
  multiUserSession: Session;
}

export interface AdminLoginOptions {
  name: string;
  password: string;
  /** how long an answer is kept (default 10 s). */
  ttlMs?: number;
  /** the session timeout in seconds (couch_httpd_auth/timeout, 600 by default). */
  timeoutS: () => number;
}

interface Kept { until: number; generation: number; value: unknown }

const digest = (s: string) => createHash('sha256').update(s).digest();

function settle(p: Promise<unknown>, callback?: Callback): Promise<unknown> {
  if (typeof callback === 'function') p.then((v) => callback(null, v), (e) => callback(e));
  return p;
}

/** When a session id's own life ends (ms), from the hex timestamp in `name:hex:hash`; undefined when it has none. */
function sessionEnd(sessionId: string, timeoutS: number): number | undefined {
  const issued = parseInt(Buffer.from(sessionId, 'base64url').toString('latin1').split(':')[1] ?? '', 16);
  return Number.isFinite(issued) ? (issued + timeoutS) * 1000 : undefined;
}

/** Patches `api` in place; call before express-pouchdb sets up its users database. */
export function rememberAdminLogins(api: SessionApi, opts: AdminLoginOptions): { forget(): void } {
  const ttl = opts.ttlMs ?? 10_000;
  const known = digest(opts.password);
  const isAdmin = (name: unknown, password: unknown) =>
    name === opts.name && typeof password === 'string' && timingSafeEqual(digest(password), known);
  // per users database (a destroyed and recreated one starts empty)
  const logins = new WeakMap<object, Kept>();
  const sessions = new WeakMap<object, Kept & { id: string }>();
  /** bumped by `forget`: what was kept before no longer counts. */
  let generation = 0;
  const fresh = (k: Kept | undefined): k is Kept => k !== undefined && k.generation === generation && Date.now() < k.until;
  const realLogIn = api.multiUserLogIn;
  const realSession = api.multiUserSession;

  api.multiUserLogIn = function (name, password, callback) {
    const admin = isAdmin(name, password);
    const kept = admin ? logins.get(this) : undefined;
    if (fresh(kept)) return settle(Promise.resolve(structuredClone(kept.value)), callback);
    const asked = generation;
    const answer = realLogIn.call(this, name, password).then((value) => {
      if (admin && asked === generation && (value as { ok?: unknown } | undefined)?.ok === true) {
        logins.set(this, { until: Date.now() + ttl, generation, value: structuredClone(value) });
      }
      return value;
    });
    return settle(answer, callback);
  };

  api.multiUserSession = function (sessionId, callback) {
    const kept = typeof sessionId === 'string' ? sessions.get(this) : undefined;
    if (fresh(kept) && kept.id === sessionId) return settle(Promise.resolve(structuredClone(kept.value)), callback);
    const asked = generation;
    const answer = realSession.call(this, sessionId).then((value) => {
      const ctx = (value as { userCtx?: { name?: unknown; roles?: unknown } } | undefined)?.userCtx;
      const end = typeof sessionId === 'string' ? sessionEnd(sessionId, opts.timeoutS()) : undefined;
      if (end !== undefined && asked === generation && ctx?.name === opts.name && Array.isArray(ctx.roles) && ctx.roles.includes('_admin')) {
        sessions.set(this, { id: sessionId as string, until: Math.min(Date.now() + ttl, end), generation, value: structuredClone(value) });
      }
      return value;
    });
    return settle(answer, callback);
  };

  return { forget() { generation++; } };
}
