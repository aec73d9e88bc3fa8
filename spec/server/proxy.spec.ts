import { expect } from 'chai';
import http from 'node:http';
import net from 'node:net';
import { request } from 'undici';
import { makeConfig } from '../../src/config/index.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { createAuthorizer } from '../../src/core/auth.ts';
import { createLivelyServer, type LivelyServer } from '../../src/server/http.ts';
import { connect } from '../../src/store/couch.ts';
import { couchUrl, dropPrefix, uniquePrefix } from '../support/couch.ts';
import { RecordingFirer, parseReply, rawExchange } from './support.ts';

async function startLively(upstreamUrl: string): Promise<{ lively: LivelyServer; base: string }> {
  const config = makeConfig({ host: '127.0.0.1', port: 0 });
  const lively = createLivelyServer({ config, firer: new RecordingFirer(), couchUrl: upstreamUrl, logger: silentLogger, authorizeAdmin: createAuthorizer(upstreamUrl).authorizeAdmin });
  const { port } = await lively.listen();
  return { lively, base: `http://127.0.0.1:${port}` };
}

/** Resolves with each complete line of a streamed body, in order. */
function lineReader(body: AsyncIterable<Buffer>): () => Promise<string> {
  const it = body[Symbol.asyncIterator]();
  let buffered = '';
  return async function next(): Promise<string> {
    for (;;) {
      const nl = buffered.indexOf('\n');
      if (nl !== -1) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.trim() !== '') return line;
        continue;
      }
      const { value, done } = await it.next();
      if (done) throw new Error('stream ended');
      buffered += value.toString('utf8');
    }
  };
}

interface Seen { method: string; url: string; headers: http.IncomingHttpHeaders }

describe('proxy to CouchDB: mechanics against a plain HTTP upstream', () => {
  const seen: Seen[] = [];
  let upstream: http.Server;
  let upstreamPort: number;
  let lively: LivelyServer;
  let base: string;
  let firstChunk: () => void;
  let firstChunkSeen: Promise<void>;
  let feedRes: http.ServerResponse | undefined;
  let feedOpened: () => void;
  let feedClosed: () => void;
  let feedOpen: Promise<void>;
  let feedGone: Promise<void>;
  let diesRes: http.ServerResponse | undefined;
  let hangSeen: () => void;
  let hangClosed: () => void;
  const hangArrived = new Promise<void>((r) => { hangSeen = r; });
  const hangGone = new Promise<void>((r) => { hangClosed = r; });

  before(async () => {
    firstChunkSeen = new Promise((r) => { firstChunk = r; });
    feedOpen = new Promise((r) => { feedOpened = r; });
    feedGone = new Promise((r) => { feedClosed = r; });
    upstream = http.createServer((req, res) => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers });
      const path = req.url!.replace(/^\/couch/, '').split('?')[0];
      if (path === '/upload') {
        let size = 0;
        req.on('data', (c: Buffer) => { if (size === 0) firstChunk(); size += c.length; });
        req.on('end', () => { res.writeHead(201, { 'content-type': 'application/json' }); res.end(JSON.stringify({ size })); });
        return;
      }
      if (path === '/feed') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('{"seq":1}\n');
        feedRes = res;
        res.on('close', () => feedClosed());
        feedOpened();
        return;
      }
      if (path === '/hang') {
        hangSeen();
        res.on('close', () => hangClosed());
        return; // never answers
      }
      if (path === '/dies') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('{"seq":1}\n');
        diesRes = res;
        return;
      }
      if (path === '/teapot') {
        res.writeHead(418, { 'content-type': 'text/plain' });
        res.end('short and stout');
        return;
      }
      req.resume();
      req.on('end', () => {
        res.writeHead(201, {
          'content-type': 'application/json',
          etag: '"1-abc"',
          location: 'http://somewhere/db/doc',
          'set-cookie': ['AuthSession=xyz; Path=/; HttpOnly', 'other=1'],
          'x-couch-request-id': 'r1',
          connection: 'keep-alive, x-hop',
          'x-hop': 'only for this connection',
        });
        res.end(JSON.stringify({ ok: true }));
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    upstreamPort = (upstream.address() as net.AddressInfo).port;
    ({ lively, base } = await startLively(`http://admin:s3cret@127.0.0.1:${upstreamPort}`));
  });
  after(async () => {
    await lively.close();
    upstream.closeAllConnections();
    await new Promise<void>((r) => upstream.close(() => r()));
  });

  it('PUT passes method, path, query and the client\'s credentials; never the runtime\'s', async () => {
    // a raw request: HTTP clients refuse to send Connection tokens of their own
    const raw = await rawExchange(Number(new URL(base).port), [
      'PUT /db/doc?batch=ok&x=%20y HTTP/1.1\r\nHost: ' + new URL(base).host + '\r\nContent-Type: application/json\r\n'
      + 'Authorization: Basic dXNlcjpwdw==\r\nCookie: AuthSession=abc\r\nConnection: close, x-private\r\nX-Private: hop\r\n'
      + 'Proxy-Authorization: Basic xx\r\nX-Custom: kept\r\nContent-Length: 7\r\n\r\n{"a":1}',
    ]);
    expect(parseReply(raw).status).to.equal(201);
    const got = seen[seen.length - 1]!;
    expect(got.method).to.equal('PUT');
    expect(got.url).to.equal('/db/doc?batch=ok&x=%20y');
    expect(got.headers.authorization).to.equal('Basic dXNlcjpwdw==');
    expect(got.headers.cookie).to.equal('AuthSession=abc');
    expect(got.headers['x-custom']).to.equal('kept');
    expect(got.headers['content-type']).to.equal('application/json');
    expect(got.headers).to.not.have.property('x-private');
    expect(got.headers).to.not.have.property('proxy-authorization');
    expect(got.headers.host).to.equal(`127.0.0.1:${upstreamPort}`);
    expect(got.headers['x-forwarded-host']).to.equal(new URL(base).host);

    await (await request(`${base}/db/other`)).body.dump();
    expect(seen[seen.length - 1]!.headers).to.not.have.property('authorization');
  });

  it('status and headers come back as the upstream sent them, minus hop-by-hop ones', async () => {
    const res = await request(`${base}/db/doc`, { method: 'PUT', body: '{}' });
    expect(res.statusCode).to.equal(201);
    expect(res.headers.etag).to.equal('"1-abc"');
    expect(res.headers.location).to.equal('http://somewhere/db/doc');
    expect(res.headers['set-cookie']).to.deep.equal(['AuthSession=xyz; Path=/; HttpOnly', 'other=1']);
    expect(res.headers['x-couch-request-id']).to.equal('r1');
    expect(res.headers).to.not.have.property('x-hop');
    expect(await res.body.json()).to.deep.equal({ ok: true });
    const tea = await request(`${base}/teapot`);
    expect(tea.statusCode).to.equal(418);
    expect(await tea.body.text()).to.equal('short and stout');
  });

  it('a path in the CouchDB URL prefixes every proxied path', async () => {
    const prefixed = await startLively(`http://admin:s3cret@127.0.0.1:${upstreamPort}/couch/`);
    try {
      await (await request(`${prefixed.base}/db/doc?rev=1`)).body.dump();
      expect(seen[seen.length - 1]!.url).to.equal('/couch/db/doc?rev=1');
    } finally {
      await prefixed.lively.close();
    }
  });

  it('streams the request body: the upstream sees the first chunk before the client ends', async () => {
    const client = http.request(`${base}/upload`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' } });
    const replied = new Promise<{ status: number; body: string }>((resolve, reject) => {
      client.on('response', (res) => {
        let body = '';
        res.on('data', (c) => { body += c; });
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      client.on('error', reject);
    });
    client.write(Buffer.alloc(1000, 1));
    await firstChunkSeen;
    client.end(Buffer.alloc(500, 2));
    const r = await replied;
    expect(r.status).to.equal(201);
    expect(JSON.parse(r.body)).to.deep.equal({ size: 1500 });
  });

  it('streams the response line by line, and a client that leaves aborts the upstream request', async () => {
    const ac = new AbortController();
    const res = await request(`${base}/feed`, { signal: ac.signal });
    expect(res.statusCode).to.equal(200);
    const next = lineReader(res.body);
    expect(await next()).to.equal('{"seq":1}');
    await feedOpen;
    feedRes!.write('{"seq":2}\n');
    expect(await next()).to.equal('{"seq":2}');
    ac.abort();
    await feedGone; // the upstream response closes only if the proxy aborted its request
  });

  it('a client that leaves before the upstream answers aborts the upstream request', async () => {
    const ac = new AbortController();
    const pending = request(`${base}/hang`, { signal: ac.signal }).catch((err: Error) => err);
    await hangArrived;
    ac.abort();
    expect(await pending).to.be.instanceOf(Error);
    await hangGone;
  });

  it('an upstream that dies mid-stream cuts the client\'s stream, and the proxy keeps serving', async () => {
    const res = await request(`${base}/dies`);
    const next = lineReader(res.body);
    expect(await next()).to.equal('{"seq":1}');
    diesRes!.destroy();
    const err = await next().then(() => undefined, (e: Error) => e);
    expect(err).to.be.instanceOf(Error);
    const tea = await request(`${base}/teapot`);
    expect(tea.statusCode).to.equal(418);
    await tea.body.dump();
  });

  it('close() ends proxied feeds that are still open and resolves', async () => {
    const own = await startLively(`http://127.0.0.1:${upstreamPort}`);
    const res = await request(`${own.base}/dies`);
    const next = lineReader(res.body);
    expect(await next()).to.equal('{"seq":1}');
    await own.lively.close();
    const err = await next().then(() => undefined, (e: Error) => e);
    expect(err).to.be.instanceOf(Error);
    expect(own.lively.server.listening).to.equal(false);
  });

  it('upstream down: 502 LC_STORE_UNAVAILABLE as JSON', async () => {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    const down = await startLively(`http://admin:pw@127.0.0.1:${port}`);
    try {
      for (const method of ['GET', 'PUT'] as const) {
        const res = await request(`${down.base}/db/doc`, { method, body: method === 'PUT' ? '{"a":1}' : undefined });
        expect(res.statusCode, method).to.equal(502);
        const body = await res.body.json() as { error: string; reason: string };
        expect(body.error).to.equal('LC_STORE_UNAVAILABLE');
        expect(body.reason).to.not.include('pw');
      }
    } finally {
      await down.lively.close();
    }
  });
});

describe('proxy to CouchDB: against the suite\'s store', () => {
  const prefix = uniquePrefix();
  let lively: LivelyServer;
  let base: string;
  let store: string;
  let auth: string;

  before(async () => {
    const u = new URL(couchUrl());
    store = u.origin;
    auth = 'Basic ' + Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
    ({ lively, base } = await startLively(couchUrl()));
  });
  after(async () => {
    await lively.close();
    await dropPrefix(prefix);
  });

  async function send(origin: string, p: string, method: string, body?: unknown) {
    const headers = { 'content-type': 'application/json', authorization: auth };
    const res = await request(origin + p, { method: method as 'GET', headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, json: text ? JSON.parse(text) : undefined };
  }
  const viaProxy = (p: string, method: string, body?: unknown) => send(base, p, method, body);
  const direct = (p: string, method: string, body?: unknown) => send(store, p, method, body);

  it('PUT /somedb and PUT /somedb/doc through the proxy answer as the store does', async () => {
    const dbP = `/${prefix}somedb`;
    const dbD = `/${prefix}direct`;
    const [cp, cd] = [await viaProxy(dbP, 'PUT'), await direct(dbD, 'PUT')];
    expect(cp.status).to.equal(cd.status);
    expect(cp.json).to.deep.equal(cd.json);
    expect(cp.status).to.equal(201);

    const [pp, pd] = [await viaProxy(`${dbP}/doc`, 'PUT', { a: 1 }), await direct(`${dbD}/doc`, 'PUT', { a: 1 })];
    expect(pp.status).to.equal(pd.status);
    expect(pp.json.ok).to.equal(true);
    expect(pp.json.rev).to.equal(pd.json.rev); // same content, same revision
    expect(pp.headers.etag).to.equal(pd.headers.etag);
    expect(pp.headers['content-type']).to.equal(pd.headers['content-type']);

    const [gp, gd] = [await viaProxy(`${dbP}/doc`, 'GET'), await direct(`${dbP}/doc`, 'GET')];
    expect(gp.status).to.equal(200);
    expect(gp.json).to.deep.equal(gd.json);
    expect(gp.headers.etag).to.equal(gd.headers.etag);

    const [xp, xd] = [await viaProxy(`${dbP}/doc`, 'PUT', { a: 2 }), await direct(`${dbD}/doc`, 'PUT', { a: 2 })];
    expect(xp.status).to.equal(409);
    expect(xp.status).to.equal(xd.status);
    expect(xp.json).to.deep.equal(xd.json);

    const [np, nd] = [await viaProxy(`${dbP}/nothing`, 'GET'), await direct(`${dbP}/nothing`, 'GET')];
    expect(np.status).to.equal(404);
    expect(np.json).to.deep.equal(nd.json);
  });

  it('without the client\'s credentials the store refuses a write, as it does directly', async () => {
    const direct = await request(`${store}/${prefix}noauth_d`, { method: 'PUT' });
    await direct.body.dump();
    const res = await request(`${base}/${prefix}noauth_p`, { method: 'PUT' });
    const body = await res.body.json() as { error: string };
    expect(res.statusCode).to.equal(direct.statusCode);
    expect(res.statusCode).to.be.oneOf([401, 403]);
    expect(body.error).to.be.a('string');
  });

  /** nano pointed at the proxy, with the client's credentials in its URL. */
  function nanoViaProxy() {
    const u = new URL(couchUrl());
    const p = new URL(base);
    p.username = u.username;
    p.password = u.password;
    return connect(p.toString());
  }

  it('nano multipart.insert of a worker document with two attachments succeeds through the proxy', async () => {
    const nano = nanoViaProxy();
    await nano.db.create(`${prefix}workers`);
    const db = nano.use<{ type: string }>(`${prefix}workers`);
    const saved = await db.multipart.insert({ type: 'node' }, [
      { name: 'index.js', data: Buffer.from('console.log("hi")'), content_type: 'application/javascript' },
      { name: 'lib.js', data: Buffer.from('module.exports = 1'), content_type: 'application/javascript' },
    ], 'send_email');
    expect(saved.ok).to.equal(true);
    const doc = await db.get('send_email') as unknown as { _attachments: Record<string, unknown> };
    expect(Object.keys(doc._attachments).sort()).to.deep.equal(['index.js', 'lib.js']);
    const body = await db.attachment.get('send_email', 'lib.js');
    expect(body.toString()).to.equal('module.exports = 1');
  });

  it('POST /somedb/_changes?filter=_selector succeeds through the proxy', async () => {
    const nano = nanoViaProxy();
    await nano.db.create(`${prefix}sel`);
    const db = nano.use<{ color: string }>(`${prefix}sel`);
    await db.bulk({ docs: [{ _id: 'r', color: 'red' }, { _id: 'b', color: 'blue' }] });
    const res = await request(`${base}/${prefix}sel/_changes?filter=_selector`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: JSON.stringify({ selector: { color: 'red' } }),
    });
    expect(res.statusCode).to.equal(200);
    const changes = await res.body.json() as { results: Array<{ id: string }> };
    expect(changes.results.map((r) => r.id)).to.deep.equal(['r']);
  });

  it('GET /somedb/_changes?feed=continuous passes through line by line until the client leaves', async () => {
    const db = `${prefix}feed`;
    const h = { authorization: auth, 'content-type': 'application/json' };
    await (await request(`${store}/${db}`, { method: 'PUT', headers: h })).body.dump();
    await (await request(`${store}/${db}/first`, { method: 'PUT', headers: h, body: '{}' })).body.dump();

    const ac = new AbortController();
    const res = await request(`${base}/${db}/_changes?feed=continuous&heartbeat=500`, { headers: { authorization: auth }, signal: ac.signal });
    expect(res.statusCode).to.equal(200);
    const next = lineReader(res.body);
    const first = JSON.parse(await next());
    expect(first.id).to.equal('first');

    await (await request(`${store}/${db}/second`, { method: 'PUT', headers: h, body: '{}' })).body.dump();
    const second = JSON.parse(await next());
    expect(second.id).to.equal('second');
    expect(second.seq).to.not.deep.equal(first.seq);
    ac.abort();

    // the proxy keeps serving after the feed's client went away
    const after = await request(`${base}/${db}/second`, { headers: { authorization: auth } });
    expect(after.statusCode).to.equal(200);
    expect((await after.body.json() as { _id: string })._id).to.equal('second');
  });
});
