/**
 * Who may fire what: the per-event `auth` settings and the admin API, against real CouchDB
 * users in `_users`, by Basic auth and by the AuthSession cookie; and the store's own refusal
 * of a non-admin user's writes to the workers and events databases, directly and through
 * the runtime's proxy.
 */
import { expect } from 'chai';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import type { Runtime } from '../../src/runtime.ts';
import { connect } from '../../src/store/couch.ts';
import { createAuthorizer } from '../../src/core/auth.ts';
import { isLivelyError } from '../../src/shared/errors.ts';
import type { EventDef } from '../../src/events/model.ts';
import { adminHeaders, basicAuth, couchUrl, uniquePrefix } from '../support/couch.ts';
import { RecordingDispatcher } from '../support/recording-dispatcher.ts';
import { eventually, startRuntime } from '../support/runtime.ts';

interface User { name: string; password: string; roles: string[] }

const usersDb = () => connect(couchUrl()).use<Record<string, unknown>>('_users');

async function createUser(u: User): Promise<void> {
  await usersDb().insert({ _id: `org.couchdb.user:${u.name}`, name: u.name, password: u.password, roles: u.roles, type: 'user' });
}

async function setPassword(u: User, password: string): Promise<void> {
  const db = usersDb();
  const doc = await db.get(`org.couchdb.user:${u.name}`);
  await db.insert({ ...doc, password });
}

async function dropUsers(users: User[]): Promise<void> {
  const db = usersDb();
  for (const u of users) {
    const doc = await db.get(`org.couchdb.user:${u.name}`).catch(() => undefined);
    if (doc) await db.destroy(doc._id, doc._rev).catch(() => undefined);
  }
}

/** The store's origin, without the suite's admin credentials. */
function storeOrigin(): string {
  const u = new URL(couchUrl());
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

async function login(base: string, u: { name: string; password: string }): Promise<string> {
  const res = await request(`${base}/_session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: u.name, password: u.password }) });
  await res.body.dump();
  expect(res.statusCode, `login of ${u.name}`).to.equal(200);
  const set = res.headers['set-cookie'];
  const cookie = (Array.isArray(set) ? set : [set ?? '']).find((c) => c.startsWith('AuthSession='));
  expect(cookie, 'an AuthSession cookie').to.be.a('string');
  return cookie!.split(';')[0]!;
}

const pw = () => `pw-${randomBytes(9).toString('base64url')}`;

describe('auth: per-event settings and the admin API, against real CouchDB users', function () {
  this.timeout(30_000);
  const prefix = uniquePrefix();
  const plain: User = { name: `${prefix}plain`, password: pw(), roles: [] };
  const ops: User = { name: `${prefix}ops`, password: pw(), roles: ['ops', 'readers'] };
  // CouchDB 3.4+ locks a name out after 5 failed logins: each row of the matrix sends its wrong
  // password for a user of its own, so no row depends on the failures of another.
  const wrongUsers: User[] = Array.from({ length: 11 }, (_, i) => ({ name: `${prefix}wrong${i}`, password: pw(), roles: ['ops'] }));
  const users = [plain, ops, ...wrongUsers];
  const rec = new RecordingDispatcher(['node']);
  let rt: Runtime;
  const cookies: Record<string, string> = {};

  const events: Array<[string, unknown]> = [
    ['e_default', undefined],
    ['e_public', 'public'],
    ['e_user', 'user'],
    ['e_admin', 'admin'],
    ['e_role', { role: 'ops' }],
    ['e_roles', { roles: ['billing', 'ops'] }],
    ['e_roles_other', { roles: ['billing', 'nobody'] }],
  ];

  before(async () => {
    for (const u of users) await createUser(u);
    rt = await startRuntime({ config: { dbPrefix: prefix }, dispatchers: [rec] });
    await rt.db.workers.insert({ _id: 'w', type: 'node', delegate: 'main.js', _attachments: { 'main.js': { content_type: 'application/javascript', data: Buffer.from('').toString('base64') } } });
    await rt.db.events.bulk({ docs: events.map(([id, auth]) => ({ _id: id, ...(auth === undefined ? {} : { auth }), trigger: { [`/${id}`]: {} }, workers: { w: {} } })) });
    await eventually(() => rt.catalog.matcher.size >= events.length, 5_000, 'events loaded');
    // Sessions are opened through the runtime's proxy, as a browser app on its origin would.
    cookies.ops = await login(rt.url, ops);
    const u = new URL(couchUrl());
    cookies.admin = await login(rt.url, { name: decodeURIComponent(u.username), password: decodeURIComponent(u.password) });
  });
  after(async () => {
    await rt?.stop();
    await dropUsers(users);
  });

  type Caller = 'none' | 'wrong password' | 'user' | 'ops user' | 'ops cookie' | 'admin' | 'admin cookie';
  const callers: Caller[] = ['none', 'wrong password', 'user', 'ops user', 'ops cookie', 'admin', 'admin cookie'];
  function headersOf(c: Caller, row = 0): Record<string, string> {
    switch (c) {
      case 'none': return {};
      case 'wrong password': return { authorization: basicAuth(wrongUsers[row]!.name, `${wrongUsers[row]!.password}-wrong`) };
      case 'user': return { authorization: basicAuth(plain.name, plain.password) };
      case 'ops user': return { authorization: basicAuth(ops.name, ops.password) };
      case 'ops cookie': return { cookie: `theme=dark; ${cookies.ops}` };
      case 'admin': return adminHeaders();
      case 'admin cookie': return { cookie: cookies.admin! };
    }
  }

  //                                    none wrong user  ops  opsC admin adminC
  const matrix: Array<[string, number[]]> = [
    ['/_events/e_default',            [202, 202, 202, 202, 202, 202, 202]],
    ['/_events/e_public',             [202, 202, 202, 202, 202, 202, 202]],
    ['/_events/e_user',               [401, 401, 202, 202, 202, 202, 202]],
    ['/_events/e_admin',              [401, 401, 403, 403, 403, 202, 202]],
    ['/_events/e_role',               [401, 401, 403, 202, 202, 202, 202]],
    ['/_events/e_roles',              [401, 401, 403, 202, 202, 202, 202]],
    ['/_events/e_roles_other',        [401, 401, 403, 403, 403, 202, 202]],
    // by path as well as by id
    ['/_events/e_admin?x=1',          [401, 401, 403, 403, 403, 202, 202]],
    // the admin API
    ['/_lively/status',               [401, 401, 403, 403, 403, 200, 200]],
    ['/_lively/metrics',              [401, 401, 403, 403, 403, 200, 200]],
    ['/_lively/health',               [200, 200, 200, 200, 200, 200, 200]],
  ];

  it('each auth setting × (none, wrong password, user, role holder by Basic and cookie, admin by Basic and cookie) gives 202/401/403', async () => {
    const before = rec.messages.length;
    let fired = 0;
    const wrong: string[] = [];
    expect(matrix.length).to.be.at.most(wrongUsers.length);
    for (const [row, [path, expected]] of matrix.entries()) {
      for (let i = 0; i < callers.length; i++) {
        const res = await request(rt.url + path, { headers: headersOf(callers[i]!, row) });
        const text = await res.body.text();
        if (res.statusCode !== expected[i]) wrong.push(`${path} as ${callers[i]}: ${res.statusCode} ${text} (expected ${expected[i]})`);
        if (res.statusCode === 202) fired++;
        if (res.statusCode === 401) {
          expect(res.headers['www-authenticate'], `${path} as ${callers[i]}`).to.equal('Basic realm="LivelyCouch"');
          expect(JSON.parse(text).error).to.equal('LC_UNAUTHORIZED');
        }
        if (res.statusCode === 403) {
          expect(res.headers['www-authenticate']).to.equal(undefined);
          expect(JSON.parse(text).error).to.equal('LC_FORBIDDEN');
        }
      }
    }
    expect(wrong, wrong.join('\n')).to.deep.equal([]);
    // Exactly the accepted triggers reached a worker; a refused one never does.
    await rec.received(before + fired);
    expect(rec.messages.length - before).to.equal(fired);
  });

  it('a 403 says what the event needs, without naming the caller or echoing credentials', async () => {
    const res = await request(`${rt.url}/_events/e_roles_other`, { headers: headersOf('ops user') });
    const body = await res.body.json() as { reason: string };
    expect(body.reason).to.equal('event "e_roles_other" needs one of the roles "billing", "nobody"');
    expect(JSON.stringify(body)).to.not.contain(ops.password);
  });

  it('a non-admin CouchDB user cannot write the workers or events database: 403 from the store, directly and through the proxy', async () => {
    const worker = { type: 'node', delegate: 'main.js', _attachments: { 'main.js': { content_type: 'application/javascript', data: Buffer.from('process.exit(1)').toString('base64') } } };
    for (const [base, via] of [[storeOrigin(), 'store'], [rt.url, 'proxy']] as const) {
      for (const who of [plain, ops]) {
        for (const [db, doc] of [[`${prefix}workers`, worker], [`${prefix}events`, { trigger: { '/planted': {} }, workers: { w: {} } }]] as const) {
          const res = await request(`${base}/${db}/planted_${who.name}`, { method: 'PUT', headers: { authorization: basicAuth(who.name, who.password), 'content-type': 'application/json' }, body: JSON.stringify(doc) });
          const body = await res.body.json() as { error: string };
          expect(res.statusCode, `${who.name} → ${db} via ${via}`).to.equal(403);
          expect(body.error).to.equal('forbidden');
        }
        // Through _bulk_docs too: a user who is not a member is refused the whole request.
        const bulk = await request(`${base}/${prefix}workers/_bulk_docs`, { method: 'POST', headers: { authorization: basicAuth(who.name, who.password), 'content-type': 'application/json' }, body: JSON.stringify({ docs: [{ _id: `bulk_${who.name}`, ...worker }] }) });
        const refused = await bulk.body.json() as { error?: string };
        expect(bulk.statusCode, `bulk via ${via}`).to.equal(403);
        expect(refused.error, `bulk via ${via}`).to.equal('forbidden');
      }
    }
    // Nothing was planted; the runtime's admin can still write (the check can pass).
    expect((await rt.db.workers.list()).rows.map((r) => r.id)).to.deep.equal(['_design/lively', 'w']);
    const ok = await request(`${storeOrigin()}/${prefix}workers/admin_written`, { method: 'PUT', headers: { ...adminHeaders(), 'content-type': 'application/json' }, body: JSON.stringify(worker) });
    await ok.body.dump();
    expect(ok.statusCode).to.equal(201);
  });
});

describe('auth: the credential cache', function () {
  this.timeout(20_000);
  const prefix = uniquePrefix();
  const dana: User = { name: `${prefix}dana`, password: pw(), roles: ['ops'] };
  const userEvent: EventDef = { id: 'guarded', triggers: [], workers: [], disabled: false, auth: 'user' };

  before(() => createUser(dana));
  after(() => dropUsers([dana]));

  it('never takes a wrong password for a cached right one, and asks again after a refusal', async () => {
    // A long TTL: were a refusal cached, the last step could not pass.
    const auth = createAuthorizer(couchUrl(), { ttlMs: 60_000 });
    const right = { authorization: basicAuth(dana.name, dana.password) };
    const nextPassword = pw();
    const wrong = { authorization: basicAuth(dana.name, nextPassword) };
    expect(await auth.authenticate(right)).to.deep.include({ name: dana.name });
    expect(auth.cached).to.equal(1);
    const refused = await auth.authorizeEvent(userEvent, wrong).then(() => undefined, (e: unknown) => e);
    expect(isLivelyError(refused, 'LC_UNAUTHORIZED'), String(refused)).to.equal(true);
    expect(auth.cached, 'a refusal is not cached').to.equal(1);
    // The user's password becomes what was refused a moment ago: accepted now, within the TTL.
    await setPassword(dana, nextPassword);
    await eventually(async () => (await auth.authenticate(wrong).catch(() => null))?.name === dana.name, 10_000, 'the new password accepted');
    // While the old one stays cached until its TTL ends (documented: changes take up to ttlMs).
    expect(await auth.authenticate(right)).to.deep.include({ name: dana.name });
  });

  it('concurrent checks of the same credentials share one answer', async () => {
    const auth = createAuthorizer(couchUrl());
    const h = adminHeaders();
    const results = await Promise.all(Array.from({ length: 20 }, () => auth.authenticate(h)));
    expect(new Set(results).size).to.equal(1);
    expect(results[0]!.roles).to.include('_admin');
  });

  it('without a store, a protected event is 502 (never let through), while the runtime\'s own admin credentials still work', async () => {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    const auth = createAuthorizer(`http://boss:${encodeURIComponent('p@ss:w/rd')}@127.0.0.1:${port}`, { timeoutMs: 2_000 });
    const err = await auth.authorizeEvent(userEvent, { authorization: basicAuth('someone', 'x') }).then(() => undefined, (e: unknown) => e);
    expect(isLivelyError(err, 'LC_STORE_UNAVAILABLE'), String(err)).to.equal(true);
    expect(String((err as Error).message)).to.not.contain('p@ss');
    await auth.authorizeAdmin({ authorization: basicAuth('boss', 'p@ss:w/rd') });
    const wrongAdmin = await auth.authorizeAdmin({ authorization: basicAuth('boss', 'p@ss:w/rd!') }).then(() => undefined, (e: unknown) => e);
    // a wrong password for the runtime's own admin name is refused without asking the store
    // (asked, it would count towards CouchDB's lockout of the runtime's own connection)
    expect(isLivelyError(wrongAdmin, 'LC_UNAUTHORIZED'), String(wrongAdmin)).to.equal(true);
  });
});
