import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { credentialsApart } from '../../src/store/couch.ts';
import { EmbeddedStore } from '../../src/store/embedded/supervisor.ts';
import { builtStoreServer } from '../support/store-build.ts';
import { couchUrl, uniquePrefix } from '../support/couch.ts';

/**
 * The embedded store on disk (what `livelycouch start` runs) reads document metadata ahead
 * under `_changes` and answers gets of one turn together (src/store/embedded/read-ahead.ts);
 * in memory it does neither. The same requests on both must get the same answers.
 */
describe('embedded store on disk: the same answers as in memory, with metadata read ahead', function () {
  this.timeout(60_000);
  const dirs: string[] = [];
  const stores: EmbeddedStore[] = [];
  let disk: EmbeddedStore;
  let memory: EmbeddedStore;

  async function call(store: EmbeddedStore | string, method: string, at: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const { base, authorization } = credentialsApart(typeof store === 'string' ? store : store.url);
    const res = await request(`${base}/${at}`, {
      method: method as 'GET',
      headers: { ...(authorization ? { authorization } : {}), 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.body.text();
    return { status: res.statusCode, body: JSON.parse(text) };
  }
  /** The same request on both stores: both answers, which must be equal. */
  async function both(method: string, at: string, body?: unknown): Promise<unknown> {
    const [a, b] = await Promise.all([call(disk, method, at, body), call(memory, method, at, body)]);
    expect(a, `${method} ${at}`).to.deep.equal(b);
    return a.body;
  }

  before(async () => {
    const serverFile = await builtStoreServer();
    for (const inMemory of [false, true]) {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-disk-store-'));
      dirs.push(dataDir);
      const store = new EmbeddedStore({ dataDir, memory: inMemory, serverFile });
      stores.push(store);
      await store.start();
    }
    [disk, memory] = stores as [EmbeddedStore, EmbeddedStore];
  });
  after(async () => {
    await Promise.all(stores.map((s) => s.stop()));
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('writes, updates, deletes and conflicts, then _changes page by page, _all_docs and stale writes - equal answers; the disk store read ahead', async () => {
    await both('PUT', 'same');
    const ids = Array.from({ length: 250 }, (_, i) => `doc-${String(i).padStart(3, '0')}`);
    const written = await both('POST', 'same/_bulk_docs', { docs: ids.map((_id, n) => ({ _id, n, tags: ['a', { nested: n }] })) }) as Array<{ id: string; rev: string }>;
    const rev = new Map(written.map((r) => [r.id, r.rev]));
    // updates of one in five, deletes of one in eleven, conflicts on five
    const updated = await both('POST', 'same/_bulk_docs', { docs: ids.filter((_, i) => i % 5 === 0).map((_id) => ({ _id, _rev: rev.get(_id), n: -1 })) }) as Array<{ id: string; rev: string }>;
    for (const r of updated) rev.set(r.id, r.rev);
    await both('POST', 'same/_bulk_docs', { docs: ids.filter((_, i) => i % 11 === 0).map((_id) => ({ _id, _rev: rev.get(_id), _deleted: true })) });
    await both('POST', 'same/_bulk_docs', { new_edits: false, docs: ids.slice(1, 6).map((_id) => ({ _id, _rev: '1-ffffffffffffffffffffffffffffffff', n: 'conflict' })) });
    // one at a time too, between pages
    for (let i = 0; i < 20; i++) await both('PUT', `same/single-${i}`, { i });

    const disk0 = await call(disk, 'GET', '_lively_store/stats');
    const full = await both('GET', 'same/_changes?include_docs=true&style=all_docs&conflicts=true') as { results: Array<{ id: string; deleted?: boolean }>; last_seq: unknown };
    expect(full.results).to.have.lengthOf(270);
    expect(full.results.filter((r) => r.deleted)).to.have.lengthOf(23);
    let since: unknown = 0;
    let rows = 0;
    for (let page = 0; page < 20; page++) {
      const got = await both('GET', `same/_changes?include_docs=true&limit=37&since=${encodeURIComponent(String(since))}`) as { results: unknown[]; last_seq: unknown };
      rows += got.results.length;
      since = got.last_seq;
      if (got.results.length < 37) break;
      // a write between pages: read-ahead never answers from before it
      await both('PUT', `same/between-${page}`, { page });
    }
    expect(rows).to.be.greaterThan(270);
    await both('GET', 'same/_all_docs?include_docs=true&conflicts=true');
    // stale revisions, missing revisions and new documents in one write: every existing document is looked up
    const stale = await both('POST', 'same/_bulk_docs', { docs: [
      { _id: 'doc-005', _rev: written[5]!.rev, n: 'stale' },
      { _id: 'doc-002', n: 'no rev' },
      { _id: 'doc-003', _rev: rev.get('doc-003'), n: 'fresh' },
      { _id: 'brand-new', n: 1 },
    ] }) as Array<{ id: string; error?: string; rev?: string }>;
    expect(stale.map((r) => r.error ?? 'ok')).to.deep.equal(['conflict', 'conflict', 'ok', 'ok']);
    await both('GET', 'same/doc-003?conflicts=true');

    const disk1 = (await call(disk, 'GET', '_lively_store/stats')).body as Record<string, number>;
    const mem1 = (await call(memory, 'GET', '_lively_store/stats')).body as Record<string, number>;
    const d0 = disk0.body as Record<string, number>;
    expect(disk1.read_ahead_served! - d0.read_ahead_served!).to.be.greaterThan(200);
    expect(disk1.gets_together! - d0.gets_together!).to.be.greaterThan(0);
    expect(mem1.read_ahead_served).to.equal(0);
  });

  it('POST /db/_bulk_docs with documents a validate_doc_update refuses - one row per document, in the request\'s order (disk, memory and the suite\'s store)', async () => {
    const db = `${uniquePrefix()}order`;
    const ids = Array.from({ length: 120 }, (_, i) => `o-${String(i).padStart(3, '0')}`);
    for (const store of [disk, memory, couchUrl()]) {
      expect((await call(store, 'PUT', db)).status).to.equal(201);
      await call(store, 'PUT', `${db}/_design/refuse`, { validate_doc_update: 'function (doc) { if (doc.refuse) throw { forbidden: "refused: " + doc._id }; }' });
      const res = await call(store, 'POST', `${db}/_bulk_docs`, { docs: ids.map((_id, i) => ({ _id, refuse: i % 7 === 3 })) });
      const rows = res.body as Array<{ id: string; error?: string; ok?: boolean }>;
      expect(rows.map((r) => r.id), typeof store === 'string' ? 'the suite\'s store' : store === disk ? 'disk' : 'memory').to.deep.equal(ids);
      rows.forEach((r, i) => expect(r.error).to.equal(i % 7 === 3 ? 'forbidden' : undefined));
      await call(store, 'DELETE', db);
    }
  });

  it('attachments of bytes that are not UTF-8 - read back byte for byte, alone and several in one turn (disk and memory)', async () => {
    const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 131 + 7) % 256));
    for (const store of [disk, memory]) {
      const { base, authorization } = credentialsApart(store.url);
      const headers = authorization ? { authorization } : {};
      await call(store, 'PUT', 'bin');
      const docs = Array.from({ length: 6 }, (_, i) => ({ _id: `b${i}`, _attachments: { 'x.bin': { content_type: 'application/octet-stream', data: bytes.subarray(i).toString('base64') } } }));
      const rows = (await call(store, 'POST', 'bin/_bulk_docs', { docs })).body as Array<{ ok?: boolean }>;
      expect(rows.every((r) => r.ok)).to.equal(true);
      const one = await request(`${base}/bin/b0/x.bin`, { headers });
      expect(Buffer.from(await one.body.arrayBuffer()).equals(bytes)).to.equal(true);
      const all = await Promise.all(docs.map((_, i) => request(`${base}/bin/b${i}/x.bin`, { headers }).then(async (r) => Buffer.from(await r.body.arrayBuffer()))));
      all.forEach((b, i) => expect(b.equals(bytes.subarray(i)), `b${i} on ${store === disk ? 'disk' : 'memory'}`).to.equal(true));
      const withDocs = (await call(store, 'GET', 'bin/_all_docs?include_docs=true&attachments=true')).body as { rows: Array<{ id: string; doc: { _attachments: Record<string, { data: string }> } }> };
      withDocs.rows.forEach((r, i) => expect(Buffer.from(r.doc._attachments['x.bin']!.data, 'base64').equals(bytes.subarray(i))).to.equal(true));
      await call(store, 'DELETE', 'bin');
    }
  });
});
