import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect } from '../../src/store/couch.ts';
import { ChangesFeed } from '../../src/store/feed.ts';
import type { ChangeRow } from '../../src/store/couch.ts';
import { LocalCheckpoint } from '../../src/store/checkpoint.ts';
import { EmbeddedStore } from '../../src/store/embedded/supervisor.ts';
import { couchUrl, dropPrefix, embeddedStorePid, uniquePrefix } from '../support/couch.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';
import { describeError } from '../../src/shared/errors.ts';

/** Resolves once `pred` holds, checked after every batch the feed delivers. */
function until(feed: ChangesFeed, pred: () => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    if (pred()) return resolve();
    const onBatch = () => { if (pred()) { feed.off('batch', onBatch); feed.off('error', reject); resolve(); } };
    feed.on('batch', onBatch);
    feed.once('error', reject);
  });
}

describe('ChangesFeed', () => {
  const prefix = uniquePrefix();
  const server = connect(couchUrl());
  after(() => dropPrefix(prefix));

  it('GET /db/_changes?feed=longpoll - delivers every change once (a sharded database\'s feed is not in write order), and checkpoints only after onBatch resolved', async () => {
    const name = `${prefix}order`;
    await server.db.create(name);
    const db = server.use(name);
    const seen: string[] = [];
    const log: string[] = [];
    let inBatch = false;
    const feed = new ChangesFeed(db, {
      since: '0', batchSize: 7, timeout: 1000,
      onBatch: async (rows: ChangeRow[], lastSeq) => {
        inBatch = true;
        await new Promise((r) => setTimeout(r, 5));
        for (const row of rows) seen.push(row.id);
        log.push(`batch:${lastSeq}`);
        inBatch = false;
      },
      checkpoint: async (seq) => {
        expect(inBatch).to.equal(false);
        expect(log[log.length - 1]).to.equal(`batch:${seq}`);
        log.push(`checkpoint:${seq}`);
      },
    });
    const ids = Array.from({ length: 40 }, (_, i) => `doc${String(i).padStart(3, '0')}`);
    await db.bulk({ docs: ids.slice(0, 20).map((_id) => ({ _id })) });
    feed.start();
    for (const _id of ids.slice(20)) await db.insert({ _id } as never);
    await until(feed, () => seen.length >= ids.length);
    await feed.stop();
    // every change once; the order is the store's: on Apache CouchDB 3 (q shards) it is not write order
    expect(seen).to.have.lengthOf(ids.length);
    expect([...seen].sort()).to.deep.equal(ids);
    expect(log.filter((l) => l.startsWith('checkpoint')).length).to.equal(log.filter((l) => l.startsWith('batch')).length);
    expect(feed.since).to.equal(log[log.length - 1]!.slice('checkpoint:'.length));
  });

  it('GET /db/_changes?since=<seq> - a failing onBatch is delivered again, never skipped', async () => {
    const name = `${prefix}retry`;
    await server.db.create(name);
    const db = server.use(name);
    let failures = 0;
    const seen: string[] = [];
    const feed = new ChangesFeed(db, {
      since: '0', timeout: 1000,
      onBatch: async (rows) => {
        if (failures < 2) { failures++; throw new Error('handler not ready'); }
        for (const row of rows) seen.push(row.id);
      },
    });
    await db.insert({ _id: 'a' } as never);
    feed.start();
    await until(feed, () => seen.includes('a'));
    await feed.stop();
    expect(failures).to.equal(2);
    expect(seen).to.deep.equal(['a']);
  });

  it('GET /db/_changes?limit=<pageSize> - a page of several batches is handled batch by batch, each checkpointed at its last row\'s seq; a feed from a checkpoint inside a page delivers the rest', async () => {
    const name = `${prefix}pages`;
    await server.db.create(name);
    const db = server.use(name);
    const ids = Array.from({ length: 45 }, (_, i) => `p${String(i).padStart(2, '0')}`);
    await db.bulk({ docs: ids.map((_id) => ({ _id })) });
    const batches: string[][] = [];
    const checkpoints: string[] = [];
    let pages = 0;
    let inBatch = false;
    const feed = new ChangesFeed(db, {
      since: '0', batchSize: 7, pageSize: 20, timeout: 1000,
      onBatch: async (rows) => { inBatch = true; await new Promise((r) => setTimeout(r, 2)); batches.push(rows.map((r) => r.id)); inBatch = false; },
      checkpoint: async (seq) => { expect(inBatch).to.equal(false); checkpoints.push(seq); },
    });
    feed.on('page', (p: { results: number }) => { if (p.results > 0) pages++; });
    feed.start();
    await until(feed, () => batches.flat().length >= ids.length);
    await feed.stop();
    expect([...batches.flat()].sort()).to.deep.equal(ids);
    expect(batches.every((b) => b.length >= 1 && b.length <= 7)).to.equal(true);
    expect(pages).to.equal(3); // 20 + 20 + 5, read three times: not once per batch
    expect(batches.length).to.equal(7); // 7+7+6, 7+7+6, 5
    expect(checkpoints).to.have.lengthOf(batches.length);
    // from the checkpoint after the second batch: what the first two batches held is not delivered again, the rest is
    const done = new Set(batches.slice(0, 2).flat());
    const rest: string[] = [];
    const again = new ChangesFeed(db, { since: checkpoints[1]!, batchSize: 7, pageSize: 20, timeout: 1000, onBatch: async (rows) => { for (const r of rows) rest.push(r.id); } });
    again.start();
    await until(again, () => rest.length >= ids.length - done.size);
    await again.stop();
    expect([...rest].sort()).to.deep.equal(ids.filter((id) => !done.has(id)));
  });

  it('GET /db/_changes?limit=<pageSize> - a batch that fails inside a page is delivered again from the last checkpoint; the batches before it are not', async () => {
    const name = `${prefix}pagefail`;
    await server.db.create(name);
    const db = server.use(name);
    const ids = Array.from({ length: 30 }, (_, i) => `f${String(i).padStart(2, '0')}`);
    await db.bulk({ docs: ids.map((_id) => ({ _id })) });
    const handled: string[] = [];
    let calls = 0;
    const feed = new ChangesFeed(db, {
      since: '0', batchSize: 10, pageSize: 30, timeout: 1000, maxBackoff: 50,
      onBatch: async (rows) => {
        calls++;
        if (calls === 2) throw new Error('the second batch fails once');
        for (const r of rows) handled.push(r.id);
      },
    });
    feed.start();
    await until(feed, () => handled.length >= ids.length);
    await feed.stop();
    expect(calls).to.equal(4);
    expect(handled).to.have.lengthOf(ids.length);
    expect([...handled].sort()).to.deep.equal(ids);
  });

  it('POST /db/_changes?filter=_selector - a feed with a selector delivers only matching docs', async () => {
    const name = `${prefix}selector`;
    await server.db.create(name);
    const db = server.use(name);
    const seen: string[] = [];
    const feed = new ChangesFeed(db, {
      since: '0', includeDocs: true, selector: { kind: 'job' }, timeout: 1000,
      onBatch: async (rows) => { for (const row of rows) seen.push(`${row.id}:${row.doc?.kind}`); },
    });
    feed.start();
    await db.insert({ _id: 'x', kind: 'other' } as never);
    await db.insert({ _id: 'j', kind: 'job' } as never);
    await until(feed, () => seen.length >= 1);
    await feed.stop();
    expect(seen).to.deep.equal(['j:job']);
  });

  it('GET /db/_changes?feed=longpoll&heartbeat=… - a poll whose connection goes silent is abandoned and retried, losing nothing', async () => {
    const name = `${prefix}silent`;
    await server.db.create(name);
    const proxy = await startTcpProxy(couchUrl());
    const seen: string[] = [];
    const retries: string[] = [];
    const pages: Array<{ results: number }> = [];
    const feed = new ChangesFeed(connect(proxy.url).use(name), {
      since: '0', heartbeat: 100, timeout: 60_000, maxBackoff: 200,
      onBatch: async (rows) => { for (const row of rows) seen.push(row.id); },
    });
    feed.on('retry', (err: unknown) => retries.push(describeError(err)));
    feed.on('page', (p: { results: number }) => pages.push(p));
    try {
      feed.start();
      await server.use(name).insert({ _id: 'before' } as never);
      await until(feed, () => seen.includes('before'));
      // the next longpoll waits on the store longer than the feed tolerates silence: the
      // store's heartbeat newlines keep it alive
      await new Promise((r) => setTimeout(r, 1_500));
      expect(retries).to.deep.equal([]);
      proxy.freeze(); // the link goes quiet without closing: no heartbeat gets through any more
      await server.use(name).insert({ _id: 'after' } as never);
      await until(feed, () => seen.includes('after'));
      expect(retries.some((r) => /went silent/.test(r))).to.equal(true);
      expect(seen).to.deep.equal(['before', 'after']);
      expect(pages.length).to.be.at.least(2);
    } finally {
      await feed.stop();
      await proxy.close();
    }
  });

  it('GET /missing/_changes - a 404 is fatal: the feed emits error and stops', async () => {
    const feed = new ChangesFeed(server.use(`${prefix}missing`), { since: '0', onBatch: async () => {} });
    const err = await new Promise<{ code: string }>((resolve) => { feed.once('error', resolve); feed.start(); });
    expect(err.code).to.equal('LC_STORE_UNAVAILABLE');
    expect(feed.running).to.equal(false);
  });

  it('PUT /db/_local/name - LocalCheckpoint saves and loads an opaque seq with its rev', async () => {
    const name = `${prefix}local`;
    await server.db.create(name);
    const a = new LocalCheckpoint(server.use(name), 'trigger.one');
    expect(await a.load()).to.equal(undefined);
    await a.save('12-abc');
    await a.save('13-def');
    const b = new LocalCheckpoint(server.use(name), 'trigger.one');
    expect(await b.load()).to.equal('13-def');
    // a second writer without the latest rev still lands
    await b.save('14-ghi');
    await a.save('15-jkl');
    expect(await new LocalCheckpoint(server.use(name), 'trigger.one').load()).to.equal('15-jkl');
    const changes = await server.use(name).changes({ since: '0' } as never);
    expect(changes.results).to.deep.equal([]);
  });
});

// Killing the store only makes sense for the embedded one: against COUCHDB_URL this block is not registered.
if (embeddedStorePid() !== undefined) describe('embedded store restart (only when the suite runs on the embedded store)', function () {
  this.timeout(60_000);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lively-spec-restart-'));
  const store = new EmbeddedStore({ dataDir });
  before(() => store.start());
  after(async () => {
    await store.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('kill -9 the store child - it restarts on the same URL, nano works again and disk data survives', async () => {
    const url = store.url;
    const server = connect(url);
    await server.db.create('survivor');
    await server.use('survivor').insert({ _id: 'kept', v: 1 } as never);
    const pid = store.pid!;
    const restarted = new Promise((resolve) => store.once('restart', resolve));
    process.kill(pid, 'SIGKILL');
    await restarted;
    expect(store.url).to.equal(url);
    expect(store.pid).to.not.equal(pid);
    const doc = await server.use<{ v: number }>('survivor').get('kept');
    expect(doc.v).to.equal(1);
  });

  it('kill -9 during a ChangesFeed - the feed resumes from its last batch and loses nothing', async () => {
    const server = connect(store.url);
    await server.db.create('feed');
    const db = server.use('feed');
    const seen: string[] = [];
    const feed = new ChangesFeed(db, {
      since: '0', timeout: 1000, maxBackoff: 500,
      onBatch: async (rows) => { for (const row of rows) seen.push(row.id); },
    });
    feed.start();
    await db.insert({ _id: 'before' } as never);
    await until(feed, () => seen.includes('before'));
    const restarted = new Promise((resolve) => store.once('restart', resolve));
    process.kill(store.pid!, 'SIGKILL');
    await restarted;
    await db.bulk({ docs: [{ _id: 'after1' }, { _id: 'after2' }] });
    await until(feed, () => seen.includes('after2'));
    await feed.stop();
    expect(seen).to.deep.equal(['before', 'after1', 'after2']);
  });
});
