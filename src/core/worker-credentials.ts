/**
 * `"couch": true` for process workers: each such worker gets its own CouchDB user,
 * `lively_worker_<id>`, with the roles `lively_worker` and `lively_worker_<id>` and a fresh
 * random password per runtime start. The user is no admin: it reaches exactly the databases
 * whose `_security` lists one of its roles (on Apache CouchDB 3.x new databases admit admins
 * only). The runtime's own credentials never leave the runtime.
 */
import { randomBytes } from 'node:crypto';
import type { ServerScope } from '../store/couch.ts';
import type { WorkerSpec } from '../workers/revision.ts';

export function workerUserName(workerId: string): string {
  return `lively_worker_${workerId.toLowerCase().replace(/[^a-z0-9_-]/g, '_')}`;
}

export function createWorkerCouchAccess(nano: ServerScope, couchUrl: string): (spec: WorkerSpec) => Promise<string> {
  const granted = new Map<string, Promise<string>>();
  const users = nano.use<Record<string, unknown>>('_users');

  async function grant(workerId: string): Promise<string> {
    const name = workerUserName(workerId);
    const password = randomBytes(18).toString('base64url');
    const _id = `org.couchdb.user:${name}`;
    const doc: Record<string, unknown> = { _id, name, password, type: 'user', roles: ['lively_worker', name] };
    try {
      doc._rev = (await users.get(_id))._rev;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
    await users.insert(doc);
    const url = new URL(couchUrl);
    url.username = name;
    url.password = password;
    return url.toString().replace(/\/$/, '');
  }

  return (spec) => {
    let p = granted.get(spec.id);
    if (!p) {
      p = grant(spec.id);
      granted.set(spec.id, p);
      p.catch(() => granted.delete(spec.id)); // a store outage is retried on the next start
    }
    return p;
  };
}
