/**
 * The embedded store's child starts without NODE_EXTRA_CA_CERTS (node would read the file at its
 * start) and reads the file the first time a replication needs TLS (src/store/embedded/extra-ca.ts).
 * Shown with a real replication over https: a CouchDB behind a TLS server whose certificate is
 * signed by a CA of this spec's own (spec/fixtures/tls). A store started with the variable
 * naming that CA replicates from it; one started without it refuses the certificate, so it is the
 * file that the first store trusts and nothing looser.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { storeCaEnv } from '../../src/store/embedded/contract.ts';
import { EmbeddedStore } from '../../src/store/embedded/supervisor.ts';
import { connect } from '../../src/store/couch.ts';
import { couchUrl, uniquePrefix } from '../support/couch.ts';

const kTls = fileURLToPath(new URL('../fixtures/tls/', import.meta.url));
const kCa = path.join(kTls, 'ca.pem');

/** An https server on 127.0.0.1 that forwards every request to `target` (with its credentials). */
async function tlsFront(target: string): Promise<{ port: number; close(): Promise<void> }> {
  const to = new URL(target);
  const auth = `Basic ${Buffer.from(`${decodeURIComponent(to.username)}:${decodeURIComponent(to.password)}`).toString('base64')}`;
  const srv = https.createServer({ key: fs.readFileSync(path.join(kTls, 'server.key')), cert: fs.readFileSync(path.join(kTls, 'server.pem')) }, (req, res) => {
    const out = http.request({ host: to.hostname, port: to.port, path: req.url, method: req.method, headers: { ...req.headers, host: to.host, authorization: auth } }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return { port: (srv.address() as AddressInfo).port, close: () => new Promise((resolve) => { srv.closeAllConnections(); srv.close(() => resolve()); }) };
}

/** An embedded store started while NODE_EXTRA_CA_CERTS is `ca` (unset when undefined); what it says on stderr goes to `said`. */
async function storeWith(ca: string | undefined, dataDir: string, said: string[] = []): Promise<EmbeddedStore> {
  const before = process.env.NODE_EXTRA_CA_CERTS;
  if (ca === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
  else process.env.NODE_EXTRA_CA_CERTS = ca;
  try {
    const quiet = () => undefined;
    const logger = { debug: quiet, info: quiet, error: quiet, warn: (_msg: string, fields?: Record<string, unknown>) => { said.push(String(fields?.text ?? '')); } };
    const store = new EmbeddedStore({ dataDir, memory: true, logger });
    await store.start();
    return store;
  } finally {
    if (before === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
    else process.env.NODE_EXTRA_CA_CERTS = before;
  }
}

async function replicate(store: EmbeddedStore, source: string, target: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const u = new URL(store.url);
  const res = await request(`${u.origin}/_replicate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}` },
    body: JSON.stringify({ source, target, create_target: true }),
  });
  return { status: res.statusCode, body: await res.body.json() as Record<string, unknown> };
}

describe('embedded store: NODE_EXTRA_CA_CERTS, read at the first TLS connection', function () {
  this.timeout(60_000);
  const db = `${uniquePrefix()}tls_source`;
  const dirs: string[] = [];
  const stores: EmbeddedStore[] = [];
  let front: { port: number; close(): Promise<void> };
  let source: string;

  before(async () => {
    const server = connect(couchUrl());
    await server.db.create(db);
    await server.use(db).bulk({ docs: [{ _id: 'a', n: 1 }, { _id: 'b', n: 2 }, { _id: 'c', n: 3 }] });
    front = await tlsFront(couchUrl());
    const u = new URL(couchUrl());
    source = `https://${u.username}:${u.password}@127.0.0.1:${front.port}/${db}`;
  });
  after(async () => {
    await Promise.all(stores.map((s) => s.stop()));
    await front?.close();
    await connect(couchUrl()).db.destroy(db).catch(() => undefined);
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  const dir = () => { const d = fs.mkdtempSync(path.join(os.tmpdir(), 'lively-extra-ca-')); dirs.push(d); return d; };

  it('a store started with it replicates from a CouchDB whose certificate that CA signed; its child was started without the variable', async () => {
    const store = await storeWith(kCa, dir());
    stores.push(store);
    const environ = fs.readFileSync(`/proc/${store.pid}/environ`, 'utf8').split('\0');
    expect(environ.filter((v) => v.startsWith('NODE_EXTRA_CA_CERTS='))).to.deep.equal([]);
    expect(environ).to.include(`LIVELY_STORE_EXTRA_CA=${kCa}`);
    const r = await replicate(store, source, 'copy');
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    expect((r.body.history as { docs_written: number }[])[0]!.docs_written).to.equal(3);
    const copy = await connect(store.url).use<{ n: number }>('copy').get('b');
    expect(copy.n).to.equal(2);
  });

  it('a store started without it refuses that certificate', async () => {
    const store = await storeWith(undefined, dir());
    stores.push(store);
    const r = await replicate(store, source, 'copy');
    expect(r.status, JSON.stringify(r.body)).to.not.equal(200);
    expect(JSON.stringify(r.body)).to.match(/certificate|self.signed|issuer/i);
  });

  it('a file that cannot be read: the store says so, and the replication goes on with node\'s own CAs, failing on this certificate as without it', async () => {
    const said: string[] = [];
    const missing = path.join(kTls, 'no-such-ca.pem');
    const store = await storeWith(missing, dir(), said);
    stores.push(store);
    const r = await replicate(store, source, 'copy');
    expect(r.status, JSON.stringify(r.body)).to.not.equal(200);
    expect(JSON.stringify(r.body)).to.match(/certificate|self.signed|issuer/i);
    expect(said.join('\n')).to.include(`ignoring extra certificates file ${missing}`);
  });

  it('storeCaEnv - moves the variable, and leaves it where node trusts another CA store', () => {
    expect(storeCaEnv({ NODE_EXTRA_CA_CERTS: '/x.pem' }, [])).to.deep.equal({ NODE_EXTRA_CA_CERTS: undefined, LIVELY_STORE_EXTRA_CA: '/x.pem' });
    expect(storeCaEnv({}, [])).to.deep.equal({});
    expect(storeCaEnv({ NODE_EXTRA_CA_CERTS: '/x.pem' }, ['--use-openssl-ca'])).to.deep.equal({});
    expect(storeCaEnv({ NODE_EXTRA_CA_CERTS: '/x.pem', NODE_OPTIONS: '--max-old-space-size=100 --use-system-ca' }, [])).to.deep.equal({});
  });
});
