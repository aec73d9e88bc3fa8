/**
 * `_security` enforced by the shield on every route into a database, as Apache CouchDB does:
 * express-pouchdb let `_find` and `_bulk_get` read members-only databases anonymously, and keeps
 * `_security` as `_local/_security`, which any member could overwrite. Members-only databases,
 * admin-only `_users` (unless sign-up is on), `_all_dbs` and `_dbs_info`: docs/security.md.
 */
import type { IncomingMessage } from 'node:http';

export interface UserCtx {
  name: string | null;
  roles: string[];
}

interface Section { names?: unknown; roles?: unknown }
export interface SecurityObject { admins?: Section; members?: Section }

export interface Denial { status: number; error: string; reason: string }

export interface AccessOptions {
  /** the database's `_security`, or undefined when the database does not exist. */
  security(db: string): Promise<SecurityObject | undefined>;
  /** who the request's credentials name; `'bad'` for credentials the store refuses. */
  whoAmI(req: IncomingMessage): Promise<UserCtx | 'bad'>;
  /** anonymous sign-up into `_users` (off: `_users` is for server admins). */
  signup: boolean;
}

const kAdminOnly: SecurityObject = { admins: { roles: ['_admin'] }, members: { roles: ['_admin'] } };
const kSecurityDoc = '_local/_security';
/** Server-wide routes CouchDB 3 answers for server admins only (express-pouchdb answers anyone). */
const kServerAdminOnly = new Set(['_all_dbs', '_dbs_info']);

const list = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

function inSection(user: UserCtx, s: Section | undefined): boolean {
  if (!s) return false;
  return (user.name !== null && list(s.names).includes(user.name)) || list(s.roles).some((r) => user.roles.includes(r));
}

function hasMembers(sec: SecurityObject): boolean {
  return list(sec.members?.names).length > 0 || list(sec.members?.roles).length > 0;
}

function denied(user: UserCtx): Denial {
  return user.name === null
    ? { status: 401, error: 'unauthorized', reason: 'You are not authorized to access this db.' }
    : { status: 403, error: 'forbidden', reason: 'You are not allowed to access this db.' };
}

/** Whether a request writes the document `_local/_security` through a document route. */
export function writesSecurityDoc(req: IncomingMessage, segments: string[]): boolean {
  if (req.method === 'GET' || req.method === 'HEAD') return false;
  const id = segments.slice(1).map(decodeURIComponent).join('/');
  if (id === kSecurityDoc) return true;
  const dest = req.headers.destination;
  return req.method === 'COPY' && typeof dest === 'string' && decodeURIComponent(dest.split('?')[0]!) === kSecurityDoc;
}

/** Whether a parsed write body (a document or `_bulk_docs`) holds `_local/_security`. */
export function bodyWritesSecurityDoc(body: unknown): boolean {
  if (!body || typeof body !== 'object') return false;
  const docs = (body as { docs?: unknown }).docs;
  const all = Array.isArray(docs) ? docs : [body];
  return all.some((d) => !!d && typeof d === 'object' && (d as { _id?: unknown })._id === kSecurityDoc);
}

/**
 * Why a request by someone other than the store admin (who is never asked) may not reach
 * database `db`, or undefined when it may go on to express-pouchdb and its own checks.
 */
export async function checkAccess(req: IncomingMessage, db: string, opts: AccessOptions): Promise<Denial | undefined> {
  let sec: SecurityObject | undefined;
  if (kServerAdminOnly.has(db)) {
    const user = await opts.whoAmI(req);
    if (user === 'bad') return { status: 401, error: 'unauthorized', reason: 'Name or password is incorrect.' };
    return user.roles.includes('_admin') ? undefined : { status: 401, error: 'unauthorized', reason: 'You are not a server admin.' };
  }
  if (db === '_users') {
    if (opts.signup) return undefined;
    sec = kAdminOnly;
  } else if (db.startsWith('_')) {
    return undefined;
  } else {
    sec = await opts.security(db);
    // a missing database: express-pouchdb answers 404 (or 401 to a non-admin creating it)
    if (!sec || !hasMembers(sec)) return undefined;
  }
  const user = await opts.whoAmI(req);
  if (user === 'bad') return { status: 401, error: 'unauthorized', reason: 'Name or password is incorrect.' };
  if (user.roles.includes('_admin') || inSection(user, sec.admins) || inSection(user, sec.members)) return undefined;
  return denied(user);
}
