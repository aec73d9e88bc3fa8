import { expect } from 'chai';
import net from 'node:net';
import { request } from 'undici';
import { makeConfig } from '../../src/config/index.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { createAuthorizer } from '../../src/core/auth.ts';
import { adminHeaders, basicAuth, couchUrl } from '../support/couch.ts';
import { createLivelyServer, type LivelyServer } from '../../src/server/http.ts';
import { kMaxJsonDepth } from '../../src/shared/json.ts';
import { RecordingFirer, parseReply, rawExchange } from './support.ts';

const kLimit = 4096;

/** A port nothing listens on: taken from the OS, then released. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('HTTP server: triggers and its own routes', () => {
  const firer = new RecordingFirer();
  let lively: LivelyServer;
  let base: string;
  let port: number;

  before(async () => {
    const config = makeConfig({ host: '127.0.0.1', port: 0, bodyLimit: kLimit });
    // The admin API is checked against the suite's store; the proxy points at a closed port.
    lively = createLivelyServer({ config, firer, couchUrl: `http://127.0.0.1:${await closedPort()}`, logger: silentLogger, authorizeAdmin: createAuthorizer(couchUrl()).authorizeAdmin });
    ({ port } = await lively.listen());
    base = `http://127.0.0.1:${port}`;
  });
  after(() => lively.close());

  async function call(method: string, path: string, body?: string, headers: Record<string, string> = {}) {
    const res = await request(base + path, { method: method as 'GET', body, headers });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, text, json: text ? JSON.parse(text) : undefined };
  }

  describe('ANY /_events/<path>', () => {
    it('GET with a query string: repeated keys become arrays, 202 with the activation', async () => {
      const r = await call('GET', '/_events/hello/world?x=1&x=2&color=red&plus=a+b');
      expect(r.status).to.equal(202);
      expect(r.headers['content-type']).to.equal('application/json');
      expect(r.json).to.deep.equal({ ok: true, activation: `act-${firer.requests.length}`, events: ['ev/hello/world'], workers: ['w'] });
      const got = firer.last();
      expect(got.method).to.equal('GET');
      expect(got.path).to.equal('/hello/world');
      expect({ ...got.query }).to.deep.equal({ x: ['1', '2'], color: 'red', plus: 'a b' });
      expect(got.body).to.equal(undefined);
      expect(got.wait).to.equal(false);
      expect(got.headers.host).to.equal(`127.0.0.1:${port}`);
    });

    it('/_events alone and /_events/ fire the path "/"', async () => {
      expect((await call('GET', '/_events')).status).to.equal(202);
      expect(firer.last().path).to.equal('/');
      expect((await call('GET', '/_events/?a=1')).status).to.equal(202);
      expect(firer.last().path).to.equal('/');
    });

    it('percent-escapes in the path are decoded', async () => {
      await call('GET', '/_events/files/a%20b/%C3%A9t%C3%A9');
      expect(firer.last().path).to.equal('/files/a b/été');
    });

    it('invalid percent-encoding in the path is 400 LC_BAD_REQUEST, the firer is not called', async () => {
      const before = firer.requests.length;
      for (const bad of ['/_events/a%zz', '/_events/%E0%A4%A', '/_events/%', '/_events/x/%C3']) {
        const r = await call('GET', bad);
        expect(r.status, bad).to.equal(400);
        expect(r.json.error).to.equal('LC_BAD_REQUEST');
        expect(r.json.reason).to.match(/percent-encoding/);
      }
      expect(firer.requests.length).to.equal(before);
    });

    it('POST application/json: the parsed body reaches the firer', async () => {
      const r = await call('POST', '/_events/paint', JSON.stringify({ color: 'blue', n: [1, 2] }), { 'content-type': 'application/json; charset=utf-8' });
      expect(r.status).to.equal(202);
      expect(firer.last().body).to.deep.equal({ color: 'blue', n: [1, 2] });
      expect(firer.last().method).to.equal('POST');
    });

    it('a +json media type is parsed as JSON too', async () => {
      await call('PUT', '/_events/paint', '{"color":"green"}', { 'content-type': 'application/vnd.api+json' });
      expect(firer.last().body).to.deep.equal({ color: 'green' });
    });

    it('POST application/x-www-form-urlencoded: fields, repeated ones as arrays', async () => {
      await call('POST', '/_events/form', 'color=red&tag=a&tag=b&msg=hello+world%21', { 'content-type': 'application/x-www-form-urlencoded' });
      expect({ ...(firer.last().body as object) }).to.deep.equal({ color: 'red', tag: ['a', 'b'], msg: 'hello world!' });
    });

    it('text bodies arrive as strings, binary types as base64', async () => {
      await call('POST', '/_events/t', 'plain words', { 'content-type': 'text/plain' });
      expect(firer.last().body).to.equal('plain words');
      await call('POST', '/_events/t', 'no type given');
      expect(firer.last().body).to.equal('no type given');
      const bytes = Buffer.from([0, 255, 1, 254, 10]);
      const res = await request(base + '/_events/t', { method: 'POST', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
      await res.body.dump();
      expect(firer.last().body).to.equal(bytes.toString('base64'));
    });

    it('malformed JSON with Content-Type application/json is 400 LC_BAD_JSON', async () => {
      const before = firer.requests.length;
      const r = await call('POST', '/_events/paint', '{"color": "blue",', { 'content-type': 'application/json' });
      expect(r.status).to.equal(400);
      expect(r.json.error).to.equal('LC_BAD_JSON');
      expect(r.json.reason).to.match(/not valid JSON/);
      expect(firer.requests.length).to.equal(before);
    });

    it('JSON nested deeper than the limit is 400 LC_BAD_JSON; at the limit it passes', async () => {
      const deep = '['.repeat(kMaxJsonDepth + 1) + ']'.repeat(kMaxJsonDepth + 1);
      const r = await call('POST', '/_events/deep', deep, { 'content-type': 'application/json' });
      expect(r.status).to.equal(400);
      expect(r.json.error).to.equal('LC_BAD_JSON');
      expect(r.json.reason).to.match(/nested deeper/);
      const ok = '['.repeat(kMaxJsonDepth) + '"[[[{"' + ']'.repeat(kMaxJsonDepth);
      expect((await call('POST', '/_events/deep', ok, { 'content-type': 'application/json' })).status).to.equal(202);
    });

    it('an empty JSON body is no body', async () => {
      await call('POST', '/_events/empty', '', { 'content-type': 'application/json' });
      expect(firer.last().body).to.equal(undefined);
    });

    it('a body of exactly the limit is accepted', async () => {
      const r = await call('POST', '/_events/big', 'x'.repeat(kLimit), { 'content-type': 'text/plain' });
      expect(r.status).to.equal(202);
      expect((firer.last().body as string).length).to.equal(kLimit);
    });

    it('Content-Length over the limit is 413 at once, before any body is sent, and the connection closes', async () => {
      const before = firer.requests.length;
      const raw = await rawExchange(port, [
        `POST /_events/big HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: ${kLimit + 1}\r\n\r\n`,
      ]);
      const r = parseReply(raw);
      expect(r.status).to.equal(413);
      expect(r.headers.connection).to.equal('close');
      expect(JSON.parse(r.body).error).to.equal('LC_BODY_TOO_LARGE');
      expect(firer.requests.length).to.equal(before);
    });

    it('a chunked body passing the limit is 413 as soon as it does, without waiting for its end', async () => {
      const chunk = 'y'.repeat(1000);
      const parts = [`POST /_events/big HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n`];
      for (let i = 0; i < 5; i++) parts.push(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
      // no terminating 0-chunk: the reply must not depend on the body ending
      const r = parseReply(await rawExchange(port, parts));
      expect(r.status).to.equal(413);
      expect(JSON.parse(r.body).error).to.equal('LC_BODY_TOO_LARGE');
    });

    it('a large body sent in full after the 413 does not break the reply', async () => {
      const big = Buffer.alloc(2 * 1024 * 1024, 0x61);
      const r = parseReply(await rawExchange(port, [
        `POST /_events/big HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: ${big.length}\r\n\r\n`, big,
      ]));
      expect(r.status).to.equal(413);
    });

    it('a client that leaves mid-body never reaches the firer, and the server keeps serving', async () => {
      const before = firer.requests.length;
      const raw = await rawExchange(port, [
        'POST /_events/cut HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"a":',
      ], { halfClose: true });
      if (raw.length > 0) expect(parseReply(raw).status).to.equal(400);
      expect(firer.requests.length).to.equal(before);
      expect((await call('GET', '/_events/fine')).status).to.equal(202);
    });

    it('?wait=true and wait=1 reply 200 with the outcomes; wait is not a parameter', async () => {
      for (const flag of ['wait=true', 'wait=1']) {
        const r = await call('GET', `/_events/slow?${flag}&a=1`);
        expect(r.status, flag).to.equal(200);
        expect(r.json.ok).to.equal(true);
        expect(r.json.outcomes).to.deep.equal([{ worker: 'w', status: 'ok', result: { echoed: { a: '1' } }, logs: [], durationMs: 1 }]);
        expect(firer.last().wait).to.equal(true);
        expect(firer.last().query).to.not.have.property('wait');
      }
      const r = await call('GET', '/_events/slow?wait=false');
      expect(r.status).to.equal(202);
      expect(firer.last().wait).to.equal(false);
      expect(firer.last().query).to.not.have.property('wait');
    });

    it('LivelyErrors from the firer keep their status: 404, 405 with Allow, 503 with Retry-After', async () => {
      const nf = await call('GET', '/_events/missing');
      expect(nf.status).to.equal(404);
      expect(nf.json).to.deep.equal({ error: 'LC_NO_EVENT', reason: 'no event matches /missing' });
      const na = await call('POST', '/_events/readonly', '{}', { 'content-type': 'application/json' });
      expect(na.status).to.equal(405);
      expect(na.json.error).to.equal('LC_METHOD_NOT_ALLOWED');
      expect(na.headers.allow).to.equal('GET');
      expect((await call('GET', '/_events/readonly')).status).to.equal(202);
      const busy = await call('GET', '/_events/busy');
      expect(busy.status).to.equal(503);
      expect(busy.json.error).to.equal('LC_QUEUE_FULL');
      expect(busy.headers['retry-after']).to.equal('1');
    });

    it('an unexpected throw is 500 LC_INTERNAL without its message, and the server keeps serving', async () => {
      const r = await call('GET', '/_events/bug');
      expect(r.status).to.equal(500);
      expect(r.json).to.deep.equal({ error: 'LC_INTERNAL', reason: 'internal error' });
      expect((await call('GET', '/_events/fine')).status).to.equal(202);
    });

    it('keeps the connection alive across trigger requests', async () => {
      const req = 'GET /_events/ka HTTP/1.1\r\nHost: x\r\n\r\n';
      const raw = await rawExchange(port, [req + req + 'GET /_events/ka HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
      expect(raw.toString().match(/HTTP\/1\.1 202/g)).to.have.length(3);
    });

    it('keeps the connection alive after an error reply whose request was read in full', async () => {
      const notFound = 'GET /_events/missing HTTP/1.1\r\nHost: x\r\n\r\n';
      const badJson = 'POST /_events/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{]';
      const raw = await rawExchange(port, [notFound + badJson + 'GET /_events/ka HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
      expect(raw.toString().match(/HTTP\/1\.1 \d{3}/g)).to.deep.equal(['HTTP/1.1 404', 'HTTP/1.1 400', 'HTTP/1.1 202']);
    });
  });

  describe('ANY /_events/<path> answered synchronously by the runtime', () => {
    beforeEach(() => { firer.sync = true; });
    afterEach(() => { firer.sync = false; });

    it('replies 202, and 200 with outcomes when waiting, as an asynchronous answer does', async () => {
      const r = await call('GET', '/_events/now?a=1');
      expect(r.status).to.equal(202);
      expect(r.json).to.deep.equal({ ok: true, activation: `act-${firer.requests.length}`, events: ['ev/now'], workers: ['w'] });
      const w = await call('GET', '/_events/now?wait=true');
      expect(w.status).to.equal(200);
      expect(w.json.outcomes).to.deep.equal([{ worker: 'w', status: 'ok', result: { echoed: {} }, logs: [], durationMs: 1 }]);
      expect(firer.last().wait).to.equal(true);
    });

    it('a refusal thrown at once is its status, or 500 LC_INTERNAL for a bug', async () => {
      expect((await call('GET', '/_events/missing')).status).to.equal(404);
      expect((await call('POST', '/_events/readonly')).status).to.equal(405);
      const busy = await call('GET', '/_events/busy');
      expect(busy.status).to.equal(503);
      expect(busy.headers['retry-after']).to.equal('1');
      expect((await call('GET', '/_events/bug')).json).to.deep.equal({ error: 'LC_INTERNAL', reason: 'internal error' });
    });

    it('keeps the connection alive after a refusal of a request without a body, which node has not yet marked complete', async () => {
      const notFound = 'GET /_events/missing HTTP/1.1\r\nHost: x\r\n\r\n';
      const emptyPost = 'POST /_events/readonly HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n';
      const raw = await rawExchange(port, [notFound + emptyPost + 'GET /_events/ka HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
      expect(raw.toString().match(/HTTP\/1\.1 \d{3}/g)).to.deep.equal(['HTTP/1.1 404', 'HTTP/1.1 405', 'HTTP/1.1 202']);
    });

    it('pipelined on one connection, answers come in request order though 202s wait for the end of the turn', async () => {
      const n0 = firer.requests.length;
      const get = (path: string, close = false) => `GET ${path} HTTP/1.1\r\nHost: x\r\n${close ? 'Connection: close\r\n' : ''}\r\n`;
      const raw = (await rawExchange(port, [get('/_events/p1') + get('/_events/p2') + get('/_events/missing') + get('/_events/p3?wait=true') + get('/_events/p4', true)])).toString();
      expect(raw.match(/HTTP\/1\.1 \d{3}/g)).to.deep.equal(['HTTP/1.1 202', 'HTTP/1.1 202', 'HTTP/1.1 404', 'HTTP/1.1 200', 'HTTP/1.1 202']);
      const activations = [...raw.matchAll(/"activation":"(act-\d+)"/g)].map((m) => m[1]);
      expect(activations).to.deep.equal([1, 2, 4, 5].map((k) => `act-${n0 + k}`));
    });

    it('a body is still read in full before the firer sees the request', async () => {
      const r = await call('POST', '/_events/sync-body', '{"n":1}', { 'content-type': 'application/json' });
      expect(r.status).to.equal(202);
      expect(firer.last().body).to.deep.equal({ n: 1 });
    });
  });

  describe('GET /_lively/…', () => {
    it('GET /_lively/health is 200 when the runtime is healthy and 503 when not', async () => {
      firer.healthy = true;
      const ok = await call('GET', '/_lively/health');
      expect(ok.status).to.equal(200);
      expect(ok.json).to.deep.equal({ ok: true, store: true });
      firer.healthy = false;
      const down = await call('GET', '/_lively/health');
      expect(down.status).to.equal(503);
      expect(down.json.ok).to.equal(false);
      firer.healthy = true;
    });

    it('GET /_lively/health is 503 when the health check itself throws', async () => {
      firer.healthThrows = true;
      try {
        const r = await call('GET', '/_lively/health');
        expect(r.status).to.equal(503);
        expect(r.json).to.include({ ok: false, reason: 'health check broke' });
      } finally {
        firer.healthThrows = false;
      }
    });

    it('GET /_lively/status returns the runtime status to an admin', async () => {
      const r = await call('GET', '/_lively/status', undefined, adminHeaders());
      expect(r.status).to.equal(200);
      expect(r.json).to.deep.equal({ events: 3, invalid: [{ id: 'bad', reason: 'trigger.path must be a string' }] });
    });

    it('every /_lively path but health needs credentials: 401 with WWW-Authenticate, before any route is looked up', async () => {
      for (const [method, path] of [['GET', '/_lively/status'], ['GET', '/_lively/metrics'], ['GET', '/_lively/activations'], ['GET', '/_lively/activations/x'], ['POST', '/_lively/activations/x/rerun'], ['GET', '/_lively/nothing'], ['GET', '/_lively']] as const) {
        const r = await call(method, path);
        expect(r.status, `${method} ${path}`).to.equal(401);
        expect(r.headers['www-authenticate'], path).to.equal('Basic realm="LivelyCouch"');
        expect(r.json.error, path).to.equal('LC_UNAUTHORIZED');
      }
      expect((await call('GET', '/_lively/health')).status).to.equal(200);
    });

    it('a wrong admin password or a forged session cookie is 401 on the admin API, and the reply does not echo it', async () => {
      const u = new URL(couchUrl());
      const wrong = await call('GET', '/_lively/status', undefined, { authorization: basicAuth(decodeURIComponent(u.username), 'not-the-password-x1') });
      expect(wrong.status).to.equal(401);
      expect(wrong.text).to.not.contain('not-the-password-x1');
      const forged = await call('GET', '/_lively/status', undefined, { cookie: 'AuthSession=bGl2ZWx5OjVGQTM6ZGVhZGJlZWY' });
      expect(forged.status).to.equal(401);
      // Other cookies are not credentials.
      expect((await call('GET', '/_lively/status', undefined, { cookie: 'theme=dark' })).status).to.equal(401);
    });

    it('POST /_lively/status is 405, an unknown /_lively path 404 (for an admin)', async () => {
      const r = await call('POST', '/_lively/status', '{}', adminHeaders());
      expect(r.status).to.equal(405);
      expect(r.headers.allow).to.equal('GET, HEAD');
      const nf = await call('GET', '/_lively/nothing', undefined, adminHeaders());
      expect(nf.status).to.equal(404);
      expect(nf.json.error).to.equal('LC_NOT_FOUND');
    });
  });

  describe('requests node cannot parse', () => {
    it('a garbage request line gets a JSON 400 and the connection closes', async () => {
      const r = parseReply(await rawExchange(port, ['THIS IS NOT HTTP\r\n\r\n']));
      expect(r.status).to.equal(400);
      expect(JSON.parse(r.body).error).to.equal('LC_BAD_REQUEST');
    });

    it('headers over the size limit get 431', async () => {
      const r = parseReply(await rawExchange(port, [`GET /_events/x HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`]));
      expect(r.status).to.equal(431);
    });

    it('an absolute-form request target is 400', async () => {
      const r = parseReply(await rawExchange(port, ['GET http://example.com/_events/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']));
      expect(r.status).to.equal(400);
      expect(JSON.parse(r.body).reason).to.match(/must be a path/);
    });
  });
});
