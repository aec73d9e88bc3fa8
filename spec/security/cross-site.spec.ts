/**
 * Cross-site request forgery: the console signs an admin in with CouchDB's AuthSession cookie,
 * which a browser also attaches to a form or fetch another site sends. Writes to /_lively from
 * another origin are refused (403) before any credentials are looked at; reads, the same origin
 * and clients that say no origin (the CLI, scripts) go on as before.
 */
import { expect } from 'chai';
import { request } from 'undici';
import type { Runtime } from '../../src/runtime.ts';
import { adminHeaders, couchUrl, dropPrefix, uniquePrefix } from '../support/couch.ts';
import { startRuntime } from '../support/runtime.ts';

describe('security: cross-site writes to /_lively', function () {
  this.timeout(60_000);
  const prefix = uniquePrefix();
  let rt: Runtime;
  let cookie: string;
  let host: string;

  before(async () => {
    rt = await startRuntime({ config: { dbPrefix: prefix } });
    host = new URL(rt.url).host;
    const admin = new URL(couchUrl());
    const res = await request(`${rt.url}/_session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: decodeURIComponent(admin.username), password: decodeURIComponent(admin.password) }),
    });
    await res.body.text();
    expect(res.statusCode).to.equal(200);
    const set = ([] as string[]).concat(res.headers['set-cookie'] ?? []);
    cookie = set.map((c) => c.split(';')[0]).find((c) => c.startsWith('AuthSession=')) ?? '';
    expect(cookie, 'an AuthSession cookie').to.match(/^AuthSession=.+/);
  });
  after(async () => {
    await rt?.stop();
    await dropPrefix(prefix);
  });

  async function putSecret(headers: Record<string, string>): Promise<{ status: number; body: any }> {
    const res = await request(`${rt.url}/_lively/secrets/CSRF_PROBE`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', cookie, ...headers },
      body: JSON.stringify({ value: 'v' }),
    });
    return { status: res.statusCode, body: await res.body.json().catch(() => undefined) };
  }

  it('refuses a cookie-authenticated write whose Origin is another site, and stores nothing', async () => {
    const res = await putSecret({ origin: 'https://evil.example' });
    expect(res.status).to.equal(403);
    expect(res.body.error).to.equal('LC_FORBIDDEN');
    expect(res.body.reason).to.match(/another origin/);
    const names = await request(`${rt.url}/_lively/secrets`, { headers: adminHeaders() });
    expect(JSON.stringify(await names.body.json())).not.to.include('CSRF_PROBE');
  });

  it('refuses a write the browser marks cross-site even without Origin, and an opaque origin', async () => {
    expect((await putSecret({ 'sec-fetch-site': 'cross-site' })).status).to.equal(403);
    expect((await putSecret({ origin: 'null' })).status).to.equal(403);
  });

  it('lets the same origin write with the cookie, and a client that names no origin', async () => {
    expect((await putSecret({ origin: `http://${host}`, 'sec-fetch-site': 'same-origin' })).status).to.be.oneOf([200, 201]);
    const res = await request(`${rt.url}/_lively/secrets/CSRF_PROBE`, { method: 'DELETE', headers: adminHeaders() });
    await res.body.text();
    expect(res.statusCode).to.be.oneOf([200, 204]);
  });

  it('still answers reads from another origin (they change nothing)', async () => {
    const res = await request(`${rt.url}/_lively/status`, { headers: { cookie, origin: 'https://evil.example' } });
    await res.body.text();
    expect(res.statusCode).to.equal(200);
  });
});
