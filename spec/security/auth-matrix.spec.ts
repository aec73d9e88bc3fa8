/**
 * The auth matrix: every route family the runtime serves or proxies, asked by anonymous, a wrong
 * password (a made-up name: real users are locked out after failed logins on CouchDB 3), a plain
 * user, a user with the writer role, and a server admin, all through the runtime's own address.
 * One table, the same as in docs/security.md. It runs unchanged on the embedded store and on
 * Apache CouchDB 3.
 */
import { expect } from 'chai';
import type { Runtime } from '../../src/runtime.ts';
import { dropPrefix, uniquePrefix } from '../support/couch.ts';
import { eventually, startRuntime } from '../support/runtime.ts';
import { call, dropUsers, makeUser, type User, type Who } from './support.ts';

const att = (code: string) => ({ content_type: 'application/javascript', data: Buffer.from(code).toString('base64') });

type Row = [route: string, method: string, path: string, body: unknown, anonymous: number, wrong: number, user: number, writer: number, admin: number];

/**
 * `{p}` is the database prefix, `{day}` today's date (YYYYMMDD), `{n}` a fresh name per cell.
 * Statuses: anonymous, wrong password, plain user, writer role, admin.
 */
const kMatrix: Row[] = [
  ['events db: read', 'GET', '/{p}events/pub', undefined, 401, 401, 403, 200, 200],
  ['events db: write', 'PUT', '/{p}events/e_{n}', { trigger: { '/x_{n}': {} }, workers: { ok: {} } }, 401, 401, 403, 201, 201],
  ['workers db: read', 'GET', '/{p}workers/ok', undefined, 401, 401, 403, 200, 200],
  ['workers db: write', 'PUT', '/{p}workers/w_{n}', { type: 'isolate', delegate: 'index.js', _attachments: { 'index.js': att('module.exports = () => 1;') } }, 401, 401, 403, 201, 201],
  ['state db ({p}logs): read', 'GET', '/{p}logs/_all_docs', undefined, 401, 401, 403, 403, 200],
  ['state db: write _local', 'PUT', '/{p}logs/_local/x_{n}', { seq: '1' }, 401, 401, 403, 403, 201],
  ['activation db ({p}logs-{day}): read', 'GET', '/{p}logs-{day}/_all_docs', undefined, 401, 401, 403, 403, 200],
  ['activation db: _bulk_docs write', 'POST', '/{p}logs-{day}/_bulk_docs', { docs: [{ _id: 'x_{n}' }] }, 401, 401, 403, 403, 201],
  ['durable db: _bulk_docs write', 'POST', '/{p}durable_{day}/_bulk_docs', { docs: [{ _id: 'x_{n}' }] }, 401, 401, 403, 403, 201],
  ['durable db ({p}durable_{day}): read', 'POST', '/{p}durable_{day}/_find', { selector: {} }, 401, 401, 403, 403, 200],
  ['secrets db ({p}secrets): read', 'GET', '/{p}secrets/_all_docs', undefined, 401, 401, 403, 403, 200],
  ['secrets API: list', 'GET', '/_lively/secrets', undefined, 401, 401, 403, 403, 200],
  ['secrets API: set', 'PUT', '/_lively/secrets/S_{n}', { value: 'v-{n}' }, 401, 401, 403, 403, 201],
  ['/_events, auth "public"', 'GET', '/_events/pub', undefined, 202, 202, 202, 202, 202],
  ['/_events, auth "user"', 'GET', '/_events/usr', undefined, 401, 401, 202, 202, 202],
  ['/_events, auth {roles: [writer]}', 'GET', '/_events/rol', undefined, 401, 401, 403, 202, 202],
  ['/_events, auth "admin"', 'GET', '/_events/adm', undefined, 401, 401, 403, 403, 202],
  ['/_lively/health', 'GET', '/_lively/health', undefined, 200, 200, 200, 200, 200],
  ['/_lively/status', 'GET', '/_lively/status', undefined, 401, 401, 403, 403, 200],
  ['/_lively/activations', 'GET', '/_lively/activations', undefined, 401, 401, 403, 403, 200],
  ['console page /_lively/ui/ (303: to sign-in)', 'GET', '/_lively/ui/', undefined, 303, 303, 303, 303, 200],
  ['console sign-in page', 'GET', '/_lively/ui/signin', undefined, 200, 200, 200, 200, 200],
  ['console sign-in script', 'GET', '/_lively/ui/assets/signin.js', undefined, 200, 200, 200, 200, 200],
  ['console script', 'GET', '/_lively/ui/assets/app.js', undefined, 401, 401, 403, 403, 200],
  ['console stream /_lively/stream', 'HEAD', '/_lively/stream', undefined, 401, 401, 403, 403, 200],
  ['console API: events', 'GET', '/_lively/console/events', undefined, 401, 401, 403, 403, 200],
  ['console API: disable an event', 'PUT', '/_lively/console/events/pub/disabled', { disabled: false }, 401, 401, 403, 403, 200],
  ['console API: workers', 'GET', '/_lively/console/workers', undefined, 401, 401, 403, 403, 200],
  ['console API: a worker\'s source', 'GET', '/_lively/console/workers/ok', undefined, 401, 401, 403, 403, 200],
  ['console API: store', 'GET', '/_lively/console/store', undefined, 401, 401, 403, 403, 200],
  ['_users: sign up', 'PUT', '/_users/org.couchdb.user:{p}u{n}', { name: '{p}u{n}', password: 'pw-{n}', roles: [], type: 'user' }, 401, 401, 403, 403, 201],
  ['_all_dbs', 'GET', '/_all_dbs', undefined, 401, 401, 401, 401, 200],
  ['_config', 'GET', '/_node/_local/_config', undefined, 401, 401, 401, 401, 200],
];

describe('security: the auth matrix, through the runtime', function () {
  this.timeout(120_000);
  const prefix = uniquePrefix();
  const role = `${prefix}deployers`;
  const day = new Date().toISOString().slice(0, 10).replace(/-/g, '');
  let rt: Runtime;
  let plain: User;
  let writer: User;
  const made: User[] = [];
  let n = 0;

  before(async () => {
    plain = await makeUser(prefix, 'plain');
    writer = await makeUser(prefix, 'writer', [role]);
    rt = await startRuntime({ config: { dbPrefix: prefix, writerRole: role } });
    await rt.db.workers.insert({ _id: 'ok', type: 'isolate', delegate: 'index.js', _attachments: { 'index.js': att('module.exports = () => ({ ok: true });') } } as never);
    await rt.db.events.bulk({ docs: [
      { _id: 'pub', durable: true, trigger: { '/pub': {} }, workers: { ok: {} } },
      { _id: 'usr', auth: 'user', trigger: { '/usr': {} }, workers: { ok: {} } },
      { _id: 'rol', auth: { roles: [role] }, trigger: { '/rol': {} }, workers: { ok: {} } },
      { _id: 'adm', auth: 'admin', trigger: { '/adm': {} }, workers: { ok: {} } },
    ] });
    await eventually(() => rt.catalog.matcher.size >= 4, 5_000, 'events loaded');
    // today's activation and durable databases exist once a durable trigger ran and was recorded
    expect((await fetch(`${rt.url}/_events/pub?wait=true`)).status).to.equal(200);
    await rt.activationLog.flush();
  });

  after(async () => {
    await rt?.stop();
    await dropPrefix(prefix);
    await dropUsers([plain, writer, ...made].filter(Boolean));
  });

  const fill = (v: unknown, k: number): unknown => JSON.parse(JSON.stringify(v ?? null).replace(/\{p\}/g, prefix).replace(/\{day\}/g, day).replace(/\{n\}/g, String(k)));

  it('every cell has its status', async () => {
    const whos: Array<[string, () => Who]> = [['anonymous', () => 'anonymous'], ['wrong password', () => 'wrong password'], ['user', () => plain], ['writer role', () => writer], ['admin', () => 'admin']];
    const wrong: string[] = [];
    for (const [route, method, pathT, bodyT, ...want] of kMatrix) {
      for (let i = 0; i < whos.length; i++) {
        const k = ++n;
        const path = fill(pathT, k) as string;
        const body = bodyT === undefined ? undefined : fill(bodyT, k);
        if (route.startsWith('_users') && want[i] === 201) made.push({ name: `${prefix}u${k}`, password: '', roles: [] });
        const res = await call(rt.url, method, path, whos[i]![1](), body);
        if (res.status !== want[i]) wrong.push(`${route} as ${whos[i]![0]}: ${res.status} (expected ${want[i]}) ${JSON.stringify(res.body).slice(0, 160)}`);
      }
    }
    expect(wrong).to.deep.equal([]);
  });
});
