/**
 * The embedded store remembers, for a few seconds, what pouchdb-auth answered for its own admin
 * (src/store/embedded/admin-auth.ts), so the runtime's requests are not authenticated from
 * scratch each time. Shown on pouchdb-auth's real functions over a real (in-memory) users
 * database, counting how often they run: every answer is one they gave, and anything but the
 * admin's exact credentials or a session they verified as the admin's goes to them. Then through
 * the store the suite runs on (the embedded store, or CouchDB with COUCHDB_URL): a wrong
 * password right after the admin's requests is still refused.
 */
import { expect } from 'chai';
import { createRequire } from 'node:module';
import { request } from 'undici';
import { rememberAdminLogins, type SessionApi } from '../../src/store/embedded/admin-auth.ts';
import { adminHeaders, basicAuth, couchUrl } from '../support/couch.ts';

const require = createRequire(import.meta.url);
const fromExpressPouch = createRequire(require.resolve('express-pouchdb/package.json'));
const PouchDB = require('pouchdb-node');
PouchDB.plugin(require('pouchdb-adapter-memory'));
const Auth = fromExpressPouch('pouchdb-auth');
PouchDB.plugin(Auth);
const real = fromExpressPouch('pouchdb-auth/lib/sessionapi') as SessionApi;

const kAdmin = { name: 'lively', password: 'admin-secret-for-this-spec' };
let dbs = 0;

/** A users database as express-pouchdb sets it up, and a copy of the session API patched for it, counting the real calls. */
async function setUp(ttlMs = 10_000, timeoutS = 600) {
  const db = new PouchDB(`admin-auth-spec-${++dbs}`, { adapter: 'memory' });
  const admins = await Auth.hashAdminPasswords({ [kAdmin.name]: kAdmin.password });
  await db.useAsAuthenticationDB({ isOnlineAuthDB: false, timeout: timeoutS, admins });
  const calls = { logIn: 0, session: 0 };
  const api: SessionApi = {
    multiUserLogIn(this: object, ...a: unknown[]) { calls.logIn++; return (real.multiUserLogIn as (...x: unknown[]) => Promise<unknown>).apply(this, a); },
    multiUserSession(this: object, ...a: unknown[]) { calls.session++; return (real.multiUserSession as (...x: unknown[]) => Promise<unknown>).apply(this, a); },
  };
  const kept = rememberAdminLogins(api, { ...kAdmin, ttlMs, timeoutS: () => timeoutS });
  const logIn = (name: string, password: string) => api.multiUserLogIn.call(db, name, password) as Promise<{ ok: boolean; name: string; roles: string[]; sessionID: string }>;
  const session = (id: string | undefined) => api.multiUserSession.call(db, id) as Promise<{ userCtx: { name: string | null; roles: string[] } }>;
  return { db, calls, kept, logIn, session, api };
}

const refused = (p: Promise<unknown>) => p.then(() => 'accepted', (e: { status?: number }) => e.status);

describe('embedded store: the admin\'s log-ins are remembered for a few seconds', function () {
  this.timeout(20_000);

  it('the admin\'s exact credentials get the answer pouchdb-auth gave, without running it again', async () => {
    const { calls, logIn } = await setUp();
    const first = await logIn(kAdmin.name, kAdmin.password);
    const second = await logIn(kAdmin.name, kAdmin.password);
    expect(first).to.include({ ok: true, name: kAdmin.name });
    expect(first.roles).to.deep.equal(['_admin']);
    expect(second).to.deep.equal(first);
    expect(calls.logIn, 'pouchdb-auth ran once').to.equal(1);
    second.roles.push('tampered');
    expect((await logIn(kAdmin.name, kAdmin.password)).roles, 'each caller gets its own copy').to.deep.equal(['_admin']);
  });

  it('a wrong password, another name or another user always reaches pouchdb-auth, right after the admin\'s log-in', async () => {
    const { db, logIn, calls } = await setUp();
    await logIn(kAdmin.name, kAdmin.password);
    expect(await refused(logIn(kAdmin.name, 'wrong'))).to.equal(401);
    expect(await refused(logIn(kAdmin.name, `${kAdmin.password}x`))).to.equal(401);
    expect(await refused(logIn('someone', kAdmin.password))).to.equal(401);
    await db.signUp('alice', 'alice-pw');
    expect(await logIn('alice', 'alice-pw')).to.include({ ok: true, name: 'alice' });
    expect(await refused(logIn('alice', 'nope'))).to.equal(401);
    expect(calls.logIn, 'every one of them ran pouchdb-auth').to.equal(6);
  });

  it('a session id verified as the admin\'s is answered again; another, a forged or no session id goes to pouchdb-auth', async () => {
    const { db, session, logIn, calls } = await setUp();
    const { sessionID } = await logIn(kAdmin.name, kAdmin.password);
    const one = await session(sessionID);
    const two = await session(sessionID);
    expect(one.userCtx).to.deep.equal({ name: kAdmin.name, roles: ['_admin'] });
    expect(two).to.deep.equal(one);
    expect(calls.session, 'pouchdb-auth verified it once').to.equal(1);
    await db.signUp('bob', 'bob-pw');
    const bob = await logIn('bob', 'bob-pw');
    expect((await session(bob.sessionID)).userCtx).to.deep.equal({ name: 'bob', roles: [] });
    // the admin's id with its hash changed: pouchdb-auth says anonymous
    const forged = Buffer.from(`${Buffer.from(sessionID, 'base64url').toString('latin1').slice(0, -3)}abc`, 'latin1').toString('base64url');
    expect((await session(forged)).userCtx).to.deep.equal({ name: null, roles: [] });
    expect((await session(undefined)).userCtx).to.deep.equal({ name: null, roles: [] });
    expect(calls.session).to.equal(4);
  });

  it('runs pouchdb-auth again once the answer is older than the ttl, or after forget()', async () => {
    const short = await setUp(50);
    await short.logIn(kAdmin.name, kAdmin.password);
    await short.logIn(kAdmin.name, kAdmin.password);
    expect(short.calls.logIn).to.equal(1);
    await new Promise((r) => setTimeout(r, 80));
    await short.logIn(kAdmin.name, kAdmin.password);
    expect(short.calls.logIn).to.equal(2);
    const long = await setUp();
    const { sessionID } = await long.logIn(kAdmin.name, kAdmin.password);
    await long.session(sessionID);
    long.kept.forget();
    await long.logIn(kAdmin.name, kAdmin.password);
    await long.session(sessionID);
    expect(long.calls).to.deep.equal({ logIn: 2, session: 2 });
  });

  it('never answers for a session past its own end, whatever the ttl', async () => {
    const { logIn, session, calls } = await setUp(60_000, 1);
    const { sessionID } = await logIn(kAdmin.name, kAdmin.password);
    expect((await session(sessionID)).userCtx.name).to.equal(kAdmin.name);
    await new Promise((r) => setTimeout(r, 2_100));
    expect((await session(sessionID)).userCtx, 'expired: anonymous').to.deep.equal({ name: null, roles: [] });
    expect(calls.session).to.equal(2);
  });

  it('answers callers that pass a callback, kept answers included', async () => {
    const { api, db } = await setUp();
    const viaCallback = () => new Promise((resolve, reject) => (api.multiUserLogIn as (...a: unknown[]) => unknown).call(db, kAdmin.name, kAdmin.password, (err: unknown, v: unknown) => (err ? reject(err) : resolve(v))));
    expect(await viaCallback()).to.include({ ok: true });
    expect(await viaCallback()).to.include({ ok: true });
    const wrong = await new Promise((resolve) => (api.multiUserLogIn as (...a: unknown[]) => unknown).call(db, kAdmin.name, 'wrong', (err: { status?: number }) => resolve(err?.status)));
    expect(wrong).to.equal(401);
  });

  it('through the store: the admin\'s requests keep working and a wrong password right after them is 401', async () => {
    const url = new URL(couchUrl());
    for (let i = 0; i < 3; i++) {
      const res = await request(`${url.origin}/_session`, { headers: adminHeaders() });
      const body = await res.body.json() as { userCtx: { name: string; roles: string[] } };
      expect(res.statusCode).to.equal(200);
      expect(body.userCtx.roles).to.include('_admin');
    }
    const wrong = await request(`${url.origin}/_all_dbs`, { headers: { authorization: basicAuth(decodeURIComponent(url.username), `${decodeURIComponent(url.password)}-wrong`) } });
    await wrong.body.text();
    expect(wrong.statusCode).to.equal(401);
  });
});
