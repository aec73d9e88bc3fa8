/**
 * CouchDB 3.4+'s login lockout (and the embedded store's, which answers as CouchDB does): after
 * 5 failed logins a name is refused for a while from that address. A locked-out caller gets a
 * 403 that says so — never a 502 blaming the store —, a wrong password for the runtime's own
 * admin name never reaches the store (it would lock the runtime out of it), and a client of the
 * proxy is counted under its own address, which it cannot choose.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import type { Runtime } from '../../src/runtime.ts';
import { connect } from '../../src/store/couch.ts';
import { adminHeaders, basicAuth, couchUrl, uniquePrefix } from '../support/couch.ts';
import { eventually, startRuntime } from '../support/runtime.ts';

interface User { name: string; password: string }

const pw = () => `pw-${randomBytes(9).toString('base64url')}`;
const usersDb = () => connect(couchUrl()).use<Record<string, unknown>>('_users');

function storeOrigin(): string {
  const u = new URL(couchUrl());
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

async function status(url: string, init: Parameters<typeof request>[1] = {}): Promise<{ status: number; body: any }> {
  const res = await request(url, init);
  const text = await res.body.text();
  let body: unknown;
  try { body = JSON.parse(text); } catch { body = text; }
  return { status: res.statusCode, body };
}

describe('login lockout: a locked-out caller, and the runtime\'s own admin', function () {
  this.timeout(30_000);
  const prefix = uniquePrefix();
  const locked: User = { name: `${prefix}locked`, password: pw() };
  const spoofer: User = { name: `${prefix}spoofer`, password: pw() };
  const admin = { name: decodeURIComponent(new URL(couchUrl()).username), password: decodeURIComponent(new URL(couchUrl()).password) };
  let rt: Runtime;

  before(async () => {
    for (const u of [locked, spoofer]) await usersDb().insert({ _id: `org.couchdb.user:${u.name}`, name: u.name, password: u.password, roles: [], type: 'user' });
    rt = await startRuntime({ config: { dbPrefix: prefix } });
    await rt.db.workers.insert({ _id: 'w', type: 'node', delegate: 'main.js', _attachments: { 'main.js': { content_type: 'application/javascript', data: Buffer.from('module.exports = () => 1;').toString('base64') } } } as never);
    await rt.db.events.insert({ _id: 'e_user', auth: 'user', trigger: { '/e_user': {} }, workers: { w: {} } } as never);
    await eventually(() => !!rt.catalog.get('e_user'), 5_000, 'event loaded');
  });
  after(async () => {
    await rt?.stop();
    for (const u of [locked, spoofer]) {
      const doc = await usersDb().get(`org.couchdb.user:${u.name}`).catch(() => undefined);
      if (doc) await usersDb().destroy(doc._id, doc._rev as string).catch(() => undefined);
    }
  });

  it('after 5 wrong passwords the store refuses the name, and the runtime answers 403 saying so, never 502', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await status(`${storeOrigin()}/_session`, { headers: { authorization: basicAuth(locked.name, `${locked.password}-wrong`) } });
      expect(r.status, `wrong password ${i + 1}`).to.equal(401);
    }
    // now even the right password is refused by the store …
    const direct = await status(`${storeOrigin()}/_session`, { headers: { authorization: basicAuth(locked.name, locked.password) } });
    expect(direct.status).to.equal(403);
    expect(direct.body).to.deep.equal({ error: 'forbidden', reason: 'Account is temporarily locked due to multiple authentication failures' });
    // … and the runtime says why, on events and on its admin API
    for (const path of ['/_events/e_user', '/_lively/status', '/_lively/metrics']) {
      const r = await status(rt.url + path, { headers: { authorization: basicAuth(locked.name, locked.password) } });
      expect(r.status, path).to.equal(403);
      expect(r.body.error, path).to.equal('LC_FORBIDDEN');
      expect(r.body.reason, path).to.equal('CouchDB refuses these credentials for now: Account is temporarily locked due to multiple authentication failures');
    }
  });

  it('wrong passwords for the runtime\'s admin name, by Basic and by login form, are refused without locking the runtime out', async () => {
    const wrong = basicAuth(admin.name, `${admin.password}-wrong`);
    for (let i = 0; i < 6; i++) {
      expect((await status(`${rt.url}/_events/e_user`, { headers: { authorization: wrong } })).status).to.equal(401);
      expect((await status(`${rt.url}/_lively/status`, { headers: { authorization: wrong } })).status).to.equal(401);
      const proxied = await status(`${rt.url}/_all_dbs`, { headers: { authorization: wrong } });
      expect(proxied).to.deep.equal({ status: 401, body: { error: 'unauthorized', reason: 'Name or password is incorrect.' } });
      const json = await status(`${rt.url}/_session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: admin.name, password: 'nope' }) });
      expect(json.status).to.equal(401);
      const form = await status(`${rt.url}/_session`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `name=${encodeURIComponent(admin.name)}&password=nope` });
      expect(form.status).to.equal(401);
    }
    // the runtime's own connection, and the admin, still work
    expect((await rt.db.workers.list()).rows.map((r) => r.id)).to.include('w');
    const session = await status(`${storeOrigin()}/_session`, { headers: adminHeaders() });
    expect(session.status).to.equal(200);
    expect(session.body.userCtx.name).to.equal(admin.name);
    // and the right admin password through the proxy logs in
    const login = await status(`${rt.url}/_session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(admin) });
    expect(login.status).to.equal(200);
  });

  it('a client of the proxy is counted under its own address: a made-up X-Forwarded-For does not dodge the lockout', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await status(`${rt.url}/_session`, { headers: { authorization: basicAuth(spoofer.name, 'wrong'), 'x-forwarded-for': `10.1.2.${i}` } });
      expect(r.status).to.equal(401);
    }
    const r = await status(`${rt.url}/_session`, { headers: { authorization: basicAuth(spoofer.name, spoofer.password), 'x-forwarded-for': '10.1.2.99' } });
    expect(r.status).to.equal(403);
    expect(r.body.reason).to.equal('Account is temporarily locked due to multiple authentication failures');
  });
});
