import { expect } from 'chai';
import { connect, statusOf } from '../../src/store/couch.ts';
import { initStore } from '../../src/store/init.ts';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { couchUrl, dropPrefix, uniquePrefix } from '../support/couch.ts';

function asUser(name: string, password: string): string {
  const u = new URL(couchUrl());
  u.username = name;
  u.password = password;
  return u.toString();
}

async function rejection(p: Promise<unknown>): Promise<{ statusCode?: number; reason?: string; message: string }> {
  try { await p; } catch (err) { return err as { statusCode?: number; reason?: string; message: string }; }
  throw new Error('expected the request to be refused');
}

describe('initStore', () => {
  const prefix = uniquePrefix();
  const server = connect(couchUrl());
  const user = `${prefix}bob`;
  before(async () => {
    await server.db.create('_users').catch((err) => { if (statusOf(err) !== 412) throw err; });
    await server.use('_users').insert({ _id: `org.couchdb.user:${user}`, name: user, password: 'pw-bob', roles: [], type: 'user' } as never);
  });
  after(async () => {
    await dropPrefix(prefix);
    const users = server.use<{ _rev: string }>('_users');
    const doc = await users.get(`org.couchdb.user:${user}`).catch(() => undefined);
    if (doc) await users.destroy(`org.couchdb.user:${user}`, doc._rev);
  });

  it('PUT /<prefix>events, /<prefix>workers, /<prefix>logs, /<prefix>secrets - creates the four databases', async () => {
    const names = await initStore(server, { prefix });
    expect(names).to.deep.equal({ events: `${prefix}events`, workers: `${prefix}workers`, logs: `${prefix}logs`, secrets: `${prefix}secrets` });
    const dbs = await server.db.list();
    expect(dbs).to.include.members(Object.values(names));
  });

  it('initStore twice - is idempotent: the design documents keep their revision', async () => {
    const before = await server.use<{ _rev: string }>(`${prefix}events`).get('_design/lively');
    await initStore(server, { prefix });
    const after = await server.use<{ _rev: string }>(`${prefix}events`).get('_design/lively');
    expect(after._rev).to.equal(before._rev);
  });

  it('initStore with a writer role - updates the design documents carrying their _rev', async () => {
    const before = await server.use<{ _rev: string }>(`${prefix}workers`).get('_design/lively');
    await initStore(server, { prefix, writerRole: 'deployer' });
    const after = await server.use<{ _rev: string; validate_doc_update: string }>(`${prefix}workers`).get('_design/lively');
    expect(after._rev).to.not.equal(before._rev);
    expect(after.validate_doc_update).to.contain('deployer');
  });

  it('GET /<prefix>events/_security - admins and members are _admin and the writer role', async () => {
    for (const db of ['events', 'workers']) {
      const sec = await server.request({ db: `${prefix}${db}`, path: '_security' }) as { admins: { roles: string[] }; members: { roles: string[] } };
      expect(sec.admins.roles).to.have.members(['_admin', 'deployer']);
      expect(sec.members.roles).to.have.members(['_admin', 'deployer']);
    }
  });

  it('initStore on databases that are set up - only reads: no database, _security or design document is written', async () => {
    const seen: string[] = [];
    const counting = await countingForwarder(couchUrl(), seen);
    try {
      await initStore(connect(counting.url), { prefix, writerRole: 'deployer' });
    } finally {
      await counting.close();
    }
    // the four _security documents and the two design documents, read once each
    expect(seen.filter((r) => !r.startsWith('GET '))).to.deep.equal([]);
    expect(seen.filter((r) => r.endsWith('/_security'))).to.have.length(4);
    expect(seen.filter((r) => r.endsWith('/_design/lively'))).to.have.length(2);
  });

  it('initStore after someone loosened a database\'s _security - writes it back', async () => {
    const loose = { admins: { names: [], roles: [] }, members: { names: [], roles: [] } };
    await server.request({ db: `${prefix}secrets`, path: '_security', method: 'PUT', body: loose });
    await server.request({ db: `${prefix}events`, path: '_security', method: 'PUT', body: loose });
    await initStore(server, { prefix, writerRole: 'deployer' });
    const secrets = await server.request({ db: `${prefix}secrets`, path: '_security' }) as { admins: { roles: string[] }; members: { roles: string[] } };
    expect(secrets.admins.roles).to.deep.equal(['_admin']);
    expect(secrets.members.roles).to.deep.equal(['_admin']);
    const events = await server.request({ db: `${prefix}events`, path: '_security' }) as { admins: { roles: string[] }; members: { roles: string[] } };
    expect(events.members.roles).to.have.members(['_admin', 'deployer']);
    const bob = connect(asUser(user, 'pw-bob'));
    expect((await rejection(bob.use(`${prefix}secrets`).list())).statusCode).to.be.oneOf([401, 403]);
  });

  it('PUT /<prefix>events/bad - a malformed event is refused 403 with a reason naming the field', async () => {
    const err = await rejection(server.use(`${prefix}events`).insert({ _id: 'bad', trigger: 42, workers: { w: {} } } as never));
    expect(err.statusCode).to.equal(403);
    expect(err.reason ?? err.message).to.match(/trigger/);
  });

  it('PUT /<prefix>events/email_event - the seed event is accepted from an admin', async () => {
    const res = await server.use(`${prefix}events`).insert({
      _id: 'email_event', trigger: { '/send_email': { method: 'GET' } }, workers: { send_email: { recipient: 'support@yourcompany.com' } },
    } as never);
    expect(res.ok).to.equal(true);
  });

  it('PUT /<prefix>workers/w - a user who is not an admin cannot write a worker document', async () => {
    const bob = connect(asUser(user, 'pw-bob'));
    const err = await rejection(bob.use(`${prefix}workers`).insert({ _id: 'w', type: 'node', delegate: 'main.js' } as never));
    expect(err.statusCode).to.be.oneOf([401, 403]);
    const anon = connect(new URL(couchUrl()).origin);
    const err2 = await rejection(anon.use(`${prefix}events`).insert({ _id: 'e', trigger: { '/x': {} }, workers: { w: {} } } as never));
    expect(err2.statusCode).to.be.oneOf([401, 403]);
  });

  it('GET /<prefix>events/email_event - a user who is neither admin nor writer cannot read it (403)', async () => {
    const bob = connect(asUser(user, 'pw-bob'));
    const err = await rejection(bob.use<{ workers: unknown }>(`${prefix}events`).get('email_event'));
    expect(err.statusCode).to.equal(403);
  });

  it('initStore - a prefix that makes an invalid database name is LC_CONFIG', async () => {
    const err = await rejection(initStore(server, { prefix: 'Bad Prefix' }));
    expect((err as unknown as { code: string }).code).to.equal('LC_CONFIG');
  });
});

/** An HTTP server that forwards every request to `target` and notes `METHOD /path` (query left off) in `seen`. */
async function countingForwarder(target: string, seen: string[]): Promise<{ url: string; close(): Promise<void> }> {
  const to = new URL(target);
  const auth = to.username ? `Basic ${Buffer.from(`${decodeURIComponent(to.username)}:${decodeURIComponent(to.password)}`).toString('base64')}` : undefined;
  const srv = http.createServer((req, res) => {
    seen.push(`${req.method} ${(req.url ?? '').split('?')[0]}`);
    const headers = { ...req.headers, host: to.host, ...(auth ? { authorization: auth } : {}) };
    const out = http.request({ host: to.hostname, port: to.port, path: req.url, method: req.method, headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  return { url, close: () => new Promise((resolve) => { srv.closeAllConnections(); srv.close(() => resolve()); }) };
}
