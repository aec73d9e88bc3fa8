import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { credentialsApart } from '../../src/store/couch.ts';
import { Env } from '../../src/store/embedded/contract.ts';
import { EmbeddedStore } from '../../src/store/embedded/supervisor.ts';
import { builtStoreServer } from '../support/store-build.ts';

/**
 * The store admin's `_bulk_docs` are answered by the shield's direct lane
 * (src/store/embedded/direct-bulk.ts), every other request by express-pouchdb. Two stores get
 * the same requests, one with the lane and one without (LIVELY_STORE_DIRECT_BULK=off): every
 * answer must be the same, and the lane's counter must show it answered them.
 */
describe('embedded store: the direct lane for the admin\'s _bulk_docs answers as express-pouchdb does', function () {
  this.timeout(60_000);
  const dirs: string[] = [];
  let lane: EmbeddedStore;
  let plain: EmbeddedStore;

  interface Answer { status: number; type: string | undefined; body: unknown }
  async function call(store: EmbeddedStore, method: string, at: string, body?: unknown, auth: 'admin' | 'none' = 'admin'): Promise<Answer> {
    const { base, authorization } = credentialsApart(store.url);
    const res = await request(`${base}/${at}`, {
      method: method as 'GET',
      headers: { ...(authorization && auth === 'admin' ? { authorization } : {}), 'content-type': 'application/json' },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.body.text();
    return { status: res.statusCode, type: String(res.headers['content-type']), body: JSON.parse(text) };
  }
  /** The same request on both stores; the answers must be equal. */
  async function both(method: string, at: string, body?: unknown, auth: 'admin' | 'none' = 'admin'): Promise<Answer> {
    const a = await call(lane, method, at, body, auth);
    const b = await call(plain, method, at, body, auth);
    expect(a, `${method} ${at} ${JSON.stringify(body)?.slice(0, 200)}`).to.deep.equal(b);
    return a;
  }
  const laneCount = async (store: EmbeddedStore) => ((await call(store, 'GET', '_lively_store/stats')).body as { direct_bulk?: number; direct_bulk_learned?: number });

  before(async () => {
    const serverFile = await builtStoreServer();
    const start = async (env: string | undefined) => {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-direct-bulk-'));
      dirs.push(dataDir);
      const store = new EmbeddedStore({ dataDir, memory: true, serverFile });
      const before = process.env[Env.directBulk];
      if (env === undefined) delete process.env[Env.directBulk]; else process.env[Env.directBulk] = env;
      try { await store.start(); } finally { if (before === undefined) delete process.env[Env.directBulk]; else process.env[Env.directBulk] = before; }
      return store;
    };
    lane = await start(undefined);
    plain = await start('off');
  });
  after(async () => {
    await Promise.all([lane, plain].filter(Boolean).map((s) => s.stop()));
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('writes, updates, conflicts, deletes, new_edits=false, refused ids, attachments and errors - equal answers, most of them from the lane', async () => {
    await both('PUT', 'same');
    // the first write to a database goes through express-pouchdb, which shows the lane its database
    await both('POST', 'same/_bulk_docs', { docs: [{ _id: 'first', n: 0 }] });
    expect((await laneCount(lane)).direct_bulk_learned).to.equal(1);
    const ids = Array.from({ length: 40 }, (_, i) => `doc-${i}`);
    const written = (await both('POST', 'same/_bulk_docs', { docs: ids.map((_id, n) => ({ _id, n, deep: { list: [n, { x: 'y' }] } })) })).body as Array<{ id: string; rev: string }>;
    expect(written).to.have.lengthOf(40);
    const rev = new Map(written.map((r) => [r.id, r.rev]));
    await both('POST', 'same/_bulk_docs', { docs: ids.slice(0, 10).map((_id) => ({ _id, _rev: rev.get(_id), n: -1 })) });
    // stale revisions: conflicts, row by row, beside documents that are taken
    await both('POST', 'same/_bulk_docs', { docs: [...ids.slice(0, 5).map((_id) => ({ _id, _rev: rev.get(_id), n: -2 })), { _id: 'fresh', n: 1 }] });
    await both('POST', 'same/_bulk_docs', { docs: ids.slice(20, 25).map((_id) => ({ _id, _rev: rev.get(_id), _deleted: true })) });
    await both('POST', 'same/_bulk_docs', { new_edits: false, docs: ids.slice(30, 33).map((_id) => ({ _id, _rev: '1-ffffffffffffffffffffffffffffffff', n: 'conflict' })) });
    await both('POST', 'same/_bulk_docs', { new_edits: false, docs: [{ _id: 'no-rev', n: 1 }] });
    await both('POST', 'same/_bulk_docs', { docs: [{ _id: '_bad', n: 1 }, { _id: 'ok-after-bad' }] });
    await both('POST', 'same/_bulk_docs', { docs: [{ _id: 'gone', _deleted: true }] });
    await both('POST', 'same/_bulk_docs', { docs: [{ _id: '_local/in-bulk', n: 1 }] });
    await both('POST', 'same/_bulk_docs', { docs: [] });
    await both('POST', 'same/_bulk_docs', { docs: [{ _id: 'with-file', _attachments: { 'a.txt': { content_type: 'text/plain', data: Buffer.from('hello').toString('base64') } } }] });
    await both('POST', 'same/_bulk_docs', { docs: [{ _id: 'bad-file', _attachments: { 'a.txt': { content_type: 'text/plain', data: 'not base64 ***' } } }] });
    await both('POST', 'same/_bulk_docs', { docs: [{ _id: 'bad-member', _foo: 1 }] });
    // what the writes left is the same
    await both('GET', 'same/_all_docs?include_docs=true&conflicts=true');
    await both('GET', 'same/with-file?attachments=true');
    const served = (await laneCount(lane)).direct_bulk ?? 0;
    expect(served, 'bulk writes the lane answered').to.be.at.least(12);
    expect((await laneCount(plain)).direct_bulk, 'the store without the lane counts none').to.equal(undefined);
  });

  it('a validate_doc_update sees the same user context and security object, and refuses the same documents', async () => {
    await both('PUT', 'vdu');
    await both('POST', 'vdu/_bulk_docs', { docs: [{ _id: 'warm' }] });
    const vdu = `function (newDoc, oldDoc, userCtx, secObj) {
      if (newDoc.show) throw({ forbidden: JSON.stringify({ userCtx: userCtx, secObj: secObj }) });
      if (newDoc.unauthorized) throw({ unauthorized: 'not you' });
      if (newDoc.crash) null.boom;
    }`;
    await both('POST', 'vdu/_bulk_docs', { docs: [{ _id: '_design/v', validate_doc_update: vdu }] });
    const shown = await both('POST', 'vdu/_bulk_docs', { docs: [{ _id: 'a', show: true }, { _id: 'b', unauthorized: true }, { _id: 'c' }, { _id: 'd', crash: true }] });
    expect((shown.body as Array<{ error?: string }>).slice(0, 3).map((r) => r.error)).to.deep.equal(['forbidden', 'unauthorized', undefined]);
    // a _security object set meanwhile: the same on both
    await both('PUT', 'vdu/_security', { admins: { names: [], roles: [] }, members: { names: ['somebody'], roles: [] } });
    await both('POST', 'vdu/_bulk_docs', { docs: [{ _id: 'e', show: true }] });
    expect((await laneCount(lane)).direct_bulk).to.be.greaterThan(0);
  });

  it('a deleted database: the lane forgets it (404, as express-pouchdb), and learns the new one after it is made again', async () => {
    await both('PUT', 'again');
    await both('POST', 'again/_bulk_docs', { docs: [{ _id: 'x', v: 1 }] });
    await both('POST', 'again/_bulk_docs', { docs: [{ _id: 'y', v: 1 }] });
    const learned = (await laneCount(lane)).direct_bulk_learned!;
    await both('DELETE', 'again');
    const missing = await both('POST', 'again/_bulk_docs', { docs: [{ _id: 'z' }] });
    expect(missing.status).to.equal(404);
    await both('PUT', 'again');
    // the new database is empty: the write of x is not a conflict with the old one's x
    const rows = await both('POST', 'again/_bulk_docs', { docs: [{ _id: 'x', v: 2 }] });
    expect((rows.body as Array<{ ok?: boolean }>)[0]!.ok).to.equal(true);
    await both('POST', 'again/_bulk_docs', { docs: [{ _id: 'y', v: 2 }] });
    expect((await laneCount(lane)).direct_bulk_learned).to.equal(learned + 1);
    const all = await both('GET', 'again/_all_docs?include_docs=true');
    expect((all.body as { rows: Array<{ doc: { v: number } }> }).rows.map((r) => r.doc.v)).to.deep.equal([2, 2]);
  });

  it('only the store admin takes it: anonymous writes and malformed bodies go to express-pouchdb and the shield, with equal answers', async () => {
    await both('PUT', 'open');
    await both('POST', 'open/_bulk_docs', { docs: [{ _id: 'warm' }] });
    const before = (await laneCount(lane)).direct_bulk!;
    await both('POST', 'open/_bulk_docs', { docs: [{ _id: 'anon' }] }, 'none');
    await both('POST', 'open/_bulk_docs', { docs: 'nope' });
    await both('POST', 'open/_bulk_docs', { nodocs: true });
    await both('POST', 'open/_bulk_docs', '[1, 2]');
    await both('POST', 'open/_bulk_docs', '{"docs": [');
    await both('POST', 'open/_bulk_docs?new_edits=false', { docs: [{ _id: 'q', _rev: '1-abc' }] });
    expect((await laneCount(lane)).direct_bulk).to.equal(before);
  });

  it('a change of the admins configuration closes the lane: express-pouchdb decides who is an admin from then on', async () => {
    await both('PUT', 'closing');
    await both('POST', 'closing/_bulk_docs', { docs: [{ _id: 'a' }] });
    await both('POST', 'closing/_bulk_docs', { docs: [{ _id: 'b' }] });
    const before = (await laneCount(lane)).direct_bulk!;
    const added = await call(lane, 'PUT', '_node/_local/_config/admins/second', '"second-password"');
    expect(added.status).to.equal(200);
    const after = await call(lane, 'POST', 'closing/_bulk_docs', { docs: [{ _id: 'c' }] });
    expect(after.status).to.equal(201);
    expect((await laneCount(lane)).direct_bulk).to.equal(before);
  });
});
