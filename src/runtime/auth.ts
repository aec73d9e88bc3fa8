/**
 * Per-event `auth`: the caller's credentials (Basic auth or the AuthSession cookie) are
 * checked against CouchDB's own `_session`, so LivelyCouch knows exactly the users and
 * roles CouchDB knows. Answers are cached briefly per credential to keep triggers cheap.
 */
import { request } from 'undici';
import { LivelyError } from '../shared/errors.ts';
import type { EventDef } from '../events/model.ts';
import type { HttpRequestPart } from '../shared/message.ts';

interface UserCtx { name: string | null; roles: string[] }

export function createAuthorizer(couchUrl: string, ttlMs = 5_000) {
  const origin = new URL(couchUrl);
  origin.username = '';
  origin.password = '';
  const sessionUrl = new URL('/_session', origin).toString();
  const cache = new Map<string, { at: number; ctx: UserCtx }>();

  async function userCtx(headers: HttpRequestPart['headers']): Promise<UserCtx> {
    const authorization = typeof headers.authorization === 'string' ? headers.authorization : undefined;
    const cookie = typeof headers.cookie === 'string' ? headers.cookie : undefined;
    if (!authorization && !cookie) return { name: null, roles: [] };
    const key = `${authorization ?? ''}\n${cookie ?? ''}`;
    const hit = cache.get(key);
    if (hit && Date.now() - hit.at < ttlMs) return hit.ctx;
    const res = await request(sessionUrl, { headers: { accept: 'application/json', ...(authorization ? { authorization } : {}), ...(cookie ? { cookie } : {}) } });
    const body = (await res.body.json().catch(() => ({}))) as { userCtx?: UserCtx };
    const ctx: UserCtx = res.statusCode === 200 && body.userCtx ? body.userCtx : { name: null, roles: [] };
    if (cache.size > 10_000) cache.clear();
    cache.set(key, { at: Date.now(), ctx });
    return ctx;
  }

  return async function authorize(event: EventDef, headers: HttpRequestPart['headers']): Promise<void> {
    const ctx = await userCtx(headers);
    if (!ctx.name && !ctx.roles.includes('_admin')) throw new LivelyError('LC_UNAUTHORIZED', `event "${event.id}" needs an authenticated CouchDB user`);
    const auth = event.auth;
    if (auth === 'user') return;
    const need = auth === 'admin' ? '_admin' : typeof auth === 'object' ? auth.role : '_admin';
    if (!ctx.roles.includes(need) && !ctx.roles.includes('_admin')) throw new LivelyError('LC_FORBIDDEN', `event "${event.id}" needs the role "${need}"`);
  };
}
