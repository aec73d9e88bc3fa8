/** Users and raw requests for the security specs: fresh users per spec, removed after. */
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { connect, statusOf } from '../../src/store/couch.ts';
import { adminHeaders, basicAuth, couchUrl } from '../support/couch.ts';

export interface User { name: string; password: string; roles: string[] }

/** Creates a CouchDB user with a fresh name (CouchDB 3 locks a name out after failed logins). */
export async function makeUser(prefix: string, label: string, roles: string[] = []): Promise<User> {
  const user = { name: `${prefix}${label}`, password: `Pw-${randomBytes(8).toString('hex')}`, roles };
  await connect(couchUrl()).use('_users').insert({ _id: `org.couchdb.user:${user.name}`, name: user.name, password: user.password, roles, type: 'user' } as never);
  return user;
}

export async function dropUsers(users: User[]): Promise<void> {
  const db = connect(couchUrl()).use<{ _rev: string }>('_users');
  for (const u of users) {
    const doc = await db.get(`org.couchdb.user:${u.name}`).catch((err) => { if (statusOf(err) === 404) return undefined; throw err; });
    if (doc) await db.destroy(`org.couchdb.user:${u.name}`, doc._rev);
  }
}

/** The store's origin, without credentials. */
export function storeOrigin(): string {
  return new URL(couchUrl()).origin;
}

/** Who makes a request: nobody, a made-up name with a wrong password, or a user. */
export type Who = 'anonymous' | 'wrong password' | 'admin' | User;

export function headersOf(who: Who, extra: Record<string, string> = {}): Record<string, string> {
  if (who === 'anonymous') return { ...extra };
  if (who === 'admin') return { ...extra, ...adminHeaders() };
  // a made-up name: wrong passwords never count against a real user's lockout
  if (who === 'wrong password') return { ...extra, authorization: basicAuth(`nobody_${randomBytes(4).toString('hex')}`, 'wrong') };
  return { ...extra, authorization: basicAuth(who.name, who.password) };
}

export async function call(base: string, method: string, path: string, who: Who, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await request(`${base}${path}`, {
    method: method as 'GET',
    headers: headersOf(who, body === undefined ? {} : { 'content-type': 'application/json' }),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.body.text();
  let parsed: unknown = text;
  try { parsed = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.statusCode, body: parsed };
}
