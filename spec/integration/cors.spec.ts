/**
 * `"cors"` per event and `OPTIONS`: the runtime answers preflights itself, firing nothing;
 * a listed origin gets its Access-Control-* headers, any other none; an OPTIONS to an event
 * without cors fires nothing either, unless a trigger names OPTIONS.
 */
import { expect } from 'chai';
import { request } from 'undici';
import type { Runtime } from '../../src/runtime.ts';
import { dropPrefix } from '../support/couch.ts';
import { eventually, startRuntime } from '../support/runtime.ts';

const att = (code: string) => ({ content_type: 'application/javascript', data: Buffer.from(code).toString('base64') });
const kApp = 'https://app.example';

async function call(rt: Runtime, p: string, method: string, headers: Record<string, string> = {}) {
  const res = await request(`${rt.url}/_events${p}`, { method: method as 'GET', headers });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text };
}

const corsKeys = (h: Record<string, unknown>) => Object.keys(h).filter((k) => k.startsWith('access-control-')).sort();

describe('CORS and OPTIONS for HTTP triggers', function () {
  this.timeout(30_000);
  let rt: Runtime;

  before(async () => {
    rt = await startRuntime();
    await rt.db.workers.bulk({ docs: [
      { _id: 'api', type: 'node', delegate: 'index.js', _attachments: { 'index.js': att(`module.exports = (msg) => ({ status: 200, headers: { 'x-a': '1' }, body: { method: msg.method } });`) } },
      { _id: 'boom', type: 'node', delegate: 'index.js', _attachments: { 'index.js': att(`module.exports = () => { throw new Error('inside'); };`) } },
      { _id: 'count', type: 'node', delegate: 'index.js', _attachments: { 'index.js': att('module.exports = () => ({ counted: true });') } },
    ] });
    await rt.db.events.bulk({ docs: [
      { _id: 'listed', trigger: { '/listed': { method: ['GET', 'POST'] } }, workers: { api: {} }, response: 'api',
        cors: { origins: [kApp], credentials: true, headers: ['content-type', 'x-token'], expose: ['x-a'], maxAge: 600 } },
      { _id: 'anyone', trigger: { '/anyone': {} }, workers: { api: {} }, response: 'api', cors: '*' },
      // no cors, any method: an OPTIONS must not fire it
      { _id: 'nocors', trigger: { '/nocors': {} }, workers: { count: {} } },
      { _id: 'explicit', trigger: { '/explicit': { method: ['OPTIONS', 'GET'] } }, workers: { count: {} } },
      { _id: 'failing', trigger: { '/failing': {} }, workers: { boom: {} }, response: 'boom', cors: { origins: [kApp] } },
      { _id: 'locked', trigger: { '/locked': {} }, workers: { api: {} }, response: 'api', auth: 'user', cors: { origins: [kApp], credentials: true } },
      { _id: 'fired_no_response', trigger: { '/fire': { method: 'POST' } }, workers: { count: {} }, cors: { origins: [kApp] } },
    ] });
    await eventually(() => rt.catalog.matcher.size >= 7, 10_000, 'events loaded');
  });

  after(async () => {
    await rt?.stop();
    if (rt) await dropPrefix(rt.config.dbPrefix);
  });

  it('a browser preflight from a listed origin is answered 204 with its headers, and fires nothing', async () => {
    const fired = rt.firing.fired;
    const r = await call(rt, '/listed', 'OPTIONS', { origin: kApp, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, x-token' });
    expect(r.status).to.equal(204);
    expect(r.text).to.equal('');
    expect(r.headers).to.include({
      'access-control-allow-origin': kApp,
      'access-control-allow-credentials': 'true',
      'access-control-allow-methods': 'GET, HEAD, OPTIONS, POST',
      'access-control-allow-headers': 'content-type, x-token',
      'access-control-max-age': '600',
      vary: 'Origin',
      allow: 'GET, HEAD, OPTIONS, POST',
    });
    expect(rt.firing.fired, 'no worker ran').to.equal(fired);
  });

  it('an origin not listed gets no Access-Control-* header, on the preflight or the request', async () => {
    const pre = await call(rt, '/listed', 'OPTIONS', { origin: 'https://evil.example', 'access-control-request-method': 'POST' });
    expect(pre.status).to.equal(204);
    expect(corsKeys(pre.headers)).to.deep.equal([]);
    const r = await call(rt, '/listed', 'GET', { origin: 'https://evil.example' });
    expect(r.status).to.equal(200);
    expect(corsKeys(r.headers)).to.deep.equal([]);
  });

  it('the request itself carries the origin, credentials and exposed headers', async () => {
    const r = await call(rt, '/listed', 'POST', { origin: kApp });
    expect(r.status).to.equal(200);
    expect(JSON.parse(r.text)).to.deep.equal({ method: 'POST' });
    expect(r.headers).to.include({ 'access-control-allow-origin': kApp, 'access-control-allow-credentials': 'true', 'access-control-expose-headers': 'x-a', vary: 'Origin', 'x-a': '1' });
  });

  it('"*": any origin, without credentials; the headers a preflight asks for are allowed', async () => {
    const pre = await call(rt, '/anyone', 'OPTIONS', { origin: 'https://other.example', 'access-control-request-method': 'PUT', 'access-control-request-headers': 'x-custom' });
    expect(pre.status).to.equal(204);
    expect(pre.headers).to.include({ 'access-control-allow-origin': '*', 'access-control-allow-headers': 'x-custom' });
    expect(pre.headers['access-control-allow-methods']).to.contain('PUT');
    expect(pre.headers['access-control-allow-credentials']).to.equal(undefined);
    const r = await call(rt, '/anyone', 'GET', { origin: 'https://other.example' });
    expect(r.headers['access-control-allow-origin']).to.equal('*');
  });

  it('a refusal before anything runs (405, 401, a full queue) carries the event\'s CORS headers too', async () => {
    const r = await call(rt, '/fire', 'GET', { origin: kApp });
    expect(r.status).to.equal(405);
    expect(r.headers['access-control-allow-origin']).to.equal(kApp);
    const locked = await call(rt, '/locked', 'GET', { origin: kApp });
    expect(locked.status).to.equal(401);
    expect(locked.headers['access-control-allow-origin']).to.equal(kApp);
    const other = await call(rt, '/locked', 'GET', { origin: 'https://evil.example' });
    expect(other.status).to.equal(401);
    expect(corsKeys(other.headers)).to.deep.equal([]);
  });

  it('a worker error of an event with cors carries its headers, so the page can read the 500; a 202 too', async () => {
    const r = await call(rt, '/failing', 'GET', { origin: kApp });
    expect(r.status).to.equal(500);
    expect(r.headers['access-control-allow-origin']).to.equal(kApp);
    expect(JSON.parse(r.text).activation).to.be.a('string');
    const ok = await call(rt, '/fire', 'POST', { origin: kApp });
    expect(ok.status).to.equal(202);
    expect(ok.headers['access-control-allow-origin']).to.equal(kApp);
  });

  it('OPTIONS to an event without cors fires nothing: 204 with Allow', async () => {
    const fired = rt.firing.fired;
    const r = await call(rt, '/nocors', 'OPTIONS', { origin: kApp, 'access-control-request-method': 'POST' });
    expect(r.status).to.equal(204);
    expect(r.headers.allow).to.equal('DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT');
    expect(corsKeys(r.headers)).to.deep.equal([]);
    // by id too
    const byId = await call(rt, '/nocors', 'OPTIONS');
    expect(byId.status).to.equal(204);
    expect(rt.firing.fired, 'no worker ran').to.equal(fired);
  });

  it('OPTIONS fires an event whose trigger names it; to an unknown path it is a 404', async () => {
    const fired = rt.firing.fired;
    const r = await call(rt, '/explicit', 'OPTIONS');
    expect(r.status).to.equal(202);
    expect(rt.firing.fired).to.equal(fired + 1);
    expect((await call(rt, '/nowhere', 'OPTIONS')).status).to.equal(404);
  });
});
