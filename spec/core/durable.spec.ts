/**
 * The durable-event journal on the suite's store: group-committed accepts, finishing,
 * claiming orphaned entries (one winner per entry among instances), refusing what the
 * store does not keep, and dropping finished past days.
 */
import { expect } from 'chai';
import http from 'node:http';
import { request } from 'undici';
import { connect } from '../../src/store/couch.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { isLivelyError } from '../../src/shared/errors.ts';
import { kDaySecurity } from '../../src/store/days.ts';
import { LivelyError } from '../../src/shared/errors.ts';
import { DurableJournal } from '../../src/core/durable.ts';
import { GroupCommit } from '../../src/core/group-commit.ts';
import { batchEntries, entriesLiteral, journalDbName, type DurableEntry, type DurableRef, type JournalBatch } from '../../src/core/durable-store.ts';
import { couchUrl, dropPrefix, refuseWrites, uniquePrefix } from '../support/couch.ts';
import { eventually } from '../support/runtime.ts';
import { warningsKept } from '../support/logger.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';

const entry = (activation: string, n = 0): DurableEntry => ({
  activation, method: 'POST', path: '/orders', params: { n }, events: [{ id: 'orders', bindings: {} }],
  request: { query: {}, headers: { 'content-type': 'application/json' }, body: { n } },
});

describe('GroupCommit', () => {
  /** A GroupCommit whose first write waits until `release()`, so that what is added meanwhile queues; it records each write's items. */
  function heldFirst<R>(result: (items: number[]) => R[], maxBatch?: number, maxSize?: number) {
    const batches: number[][] = [];
    let release!: () => void;
    const first = new Promise<void>((r) => { release = r; });
    const gc = new GroupCommit<number, R>(async (items) => {
      batches.push(items);
      if (batches.length === 1) await first;
      return result(items);
    }, maxBatch, maxSize);
    return { gc, batches, release };
  }

  it('writes the first item at once and everything added meanwhile together in the next write', async () => {
    const { gc, batches, release } = heldFirst((items) => items.map((i) => `r${i}`));
    const results = Array.from({ length: 100 }, (_, i) => gc.add(i));
    release();
    expect(await Promise.all(results)).to.deep.equal(Array.from({ length: 100 }, (_, i) => `r${i}`));
    expect(batches.map((b) => b.length)).to.deep.equal([1, 99]);
    expect(gc.writes).to.equal(2);
  });

  it('a write takes items up to the size budget (at least one, however large); the rest go in the next writes', async () => {
    const { gc, batches, release } = heldFirst((items) => items, 100, 10);
    const sizes = [1, 4, 4, 4, 25, 3, 3, 3, 3];
    const results = sizes.map((size, i) => gc.add(i, size));
    release();
    expect(await Promise.all(results)).to.deep.equal(sizes.map((_, i) => i));
    expect(batches).to.deep.equal([[0], [1, 2], [3], [4], [5, 6, 7], [8]]);
  });

  it('a failed write rejects its own items only; the next batch is written', async () => {
    let calls = 0;
    let release!: () => void;
    const first = new Promise<void>((r) => { release = r; });
    const gc = new GroupCommit<number, number>(async (items) => {
      calls++;
      if (calls === 1) { await first; throw new Error('store away'); }
      return items;
    });
    const a = gc.add(1);
    const b = gc.add(2);
    release();
    const [ra, rb] = await Promise.allSettled([a, b]);
    expect(ra.status).to.equal('rejected');
    expect(rb).to.deep.equal({ status: 'fulfilled', value: 2 });
  });
});

/** The batch documents of a journal database. */
async function batches(db: { list(p: object): Promise<{ rows: Array<{ doc?: unknown }> }> }): Promise<JournalBatch[]> {
  return (await db.list({ include_docs: true })).rows.map((r) => r.doc as JournalBatch);
}

describe('durable journal: a batch document\'s entries as one JSON text', () => {
  const head = { _id: 'mihx0r2k-0a1b2c3d-1', type: 'durable' as const, owner: 'inst/0a1b2c3d', accepted: 1765000000000 };
  const entries: DurableEntry[] = [
    { activation: 'a-1', method: 'POST', path: '/x', params: { q: 'ü "quoted" \\ \u2028' }, events: [{ id: 'e', bindings: { id: '1' } }], request: { query: {}, headers: { 'content-type': 'text/plain' }, body: 'line\nbreak 😀' } as never },
    { activation: 'a-2', method: 'GET', path: '/y', params: {}, events: [] },
  ];

  it('is built from the entries\' own literals as JSON.stringify makes it, and reads back exactly the entries stored, any characters included', () => {
    for (const list of [entries, entries.slice(0, 1), []]) {
      const literal = entriesLiteral(list.map((e) => JSON.stringify(JSON.stringify(e))));
      expect(literal).to.equal(JSON.stringify(JSON.stringify(list)));
      const doc: JournalBatch = JSON.parse(`${JSON.stringify(head).slice(0, -1)},"entriesJson":${literal}}`);
      expect(doc.entriesJson).to.be.a('string');
      expect(batchEntries(doc)).to.deep.equal(list);
    }
  });

  it('reads a batch an earlier version wrote with an entries array, and none from a batch whose entries cannot be read', () => {
    expect(batchEntries({ ...head, entries })).to.equal(entries);
    expect(batchEntries({ ...head, entriesJson: '[{"activation":' })).to.equal(undefined);
    expect(batchEntries({ ...head, entriesJson: '{"activation":"a"}' })).to.equal(undefined);
    expect(batchEntries({ ...head })).to.equal(undefined);
  });
});

describe('DurableJournal', function () {
  this.timeout(30_000);
  const server = connect(couchUrl());
  let prefix: string;
  const journals: DurableJournal[] = [];
  const journal = (instance: string, leaseMs?: number) => {
    const j = new DurableJournal({ server, prefix, instance, heartbeats: server.use(`${prefix}logs`), logger: silentLogger, leaseMs });
    journals.push(j);
    return j;
  };

  /**
   * The suite's server, with every listing of a journal day going through `list` (given the
   * database's own and its parameters), to count or steer a recovery scan's pages.
   */
  const listingThrough = (list: (own: (params: object) => Promise<{ rows: unknown[] }>, params: { startkey?: string }) => Promise<unknown>) => new Proxy(server, {
    get(target, key, receiver) {
      if (key !== 'use') return Reflect.get(target, key, receiver);
      return (name: string) => {
        const db = target.use(name);
        if (!name.startsWith(`${prefix}durable_`)) return db;
        return new Proxy(db, { get: (d, k, r) => (k === 'list' ? (params: object) => list((ps) => d.list(ps), params) : Reflect.get(d, k, r)) });
      };
    },
  });

  beforeEach(async () => {
    prefix = uniquePrefix();
    await server.db.create(`${prefix}logs`);
  });
  /** what a spec opened besides journals, closed after them. */
  const closing: Array<() => Promise<void>> = [];
  afterEach(async () => {
    await Promise.all(journals.splice(0).map((j) => j.close()));
    await Promise.all(closing.splice(0).map((c) => c()));
    await dropPrefix(prefix);
  });

  it('stores concurrent accepts as one batch document per write, in the day\'s database, and deletes a batch once all its entries finished', async () => {
    const j = journal('aaaaaaaa');
    const refs = await Promise.all(Array.from({ length: 100 }, (_, i) => j.accept(entry(`act-${i}`, i))));
    expect(j.acceptWrites()).to.equal(2); // the first alone, the 99 that came meanwhile together
    const db = server.use<Record<string, unknown>>(journalDbName(prefix, Date.now()));
    expect(refs[0]!.db).to.equal(journalDbName(prefix, Date.now()));
    const docs = await batches(db);
    expect(docs.map((d) => batchEntries(d)!.length).sort((a, b) => a - b)).to.deep.equal([1, 99]);
    for (const d of docs) expect(d).to.include({ type: 'durable', owner: `aaaaaaaa/${j.boot}` });
    for (const d of docs) expect(d.entriesJson, 'entries as one JSON text').to.be.a('string');
    // What callers sent is in there: the day's journal is for admins only, like the activation records.
    expect(await server.request({ db: journalDbName(prefix, Date.now()), path: '_security' })).to.deep.equal(kDaySecurity);
    const seventh = docs.flatMap((d) => batchEntries(d)!).find((e) => e.activation === 'act-7');
    expect(seventh).to.deep.equal(entry('act-7', 7));
    for (const ref of refs) j.finish(ref);
    await j.close();
    expect((await db.info()).doc_count).to.equal(0);
  });

  it('finishes made while an accept is being written ride along with the next accept write, not a write of their own', async () => {
    // The store as it is, behind a forwarder whose requests wait while `hold` is set: an accept write stays in flight.
    let hold: Promise<void> | undefined;
    const forwarder = await holdingForwarder(couchUrl(), () => hold);
    closing.push(() => forwarder.close());
    const held = connect(forwarder.url);
    const j = new DurableJournal({ server: held, prefix, instance: 'afafafaf', heartbeats: server.use(`${prefix}logs`), logger: silentLogger, finishRideMs: 60_000 });
    journals.push(j);
    const first = await j.accept(entry('ride-1', 1));
    let release!: () => void;
    hold = new Promise((r) => { release = r; });
    const second = j.accept(entry('ride-2', 2)); // its write starts at once, and waits
    await new Promise((r) => setTimeout(r, 10)); // it has taken what was due to go with it
    j.finish(first);
    await new Promise((r) => setTimeout(r, 100)); // longer than finishes wait when no accept is in flight
    release();
    hold = undefined;
    await second;
    await j.accept(entry('ride-3', 3)); // carries the first batch's deletion
    expect(j.stats.finishWrites).to.equal(0);
    const left = (await batches(server.use(journalDbName(prefix, Date.now())))).flatMap((d) => batchEntries(d)!.map((e) => e.activation));
    expect(left.sort()).to.deep.equal(['ride-2', 'ride-3']);
  });

  it('entries accepted together that would make a document too large for the store go into several, each well under CouchDB\'s limit', async () => {
    const j = journal('acacacac');
    const big = (i: number): DurableEntry => ({ ...entry(`big-${i}`, i), request: { query: {}, headers: {}, body: { text: 'x'.repeat(600_000) } } });
    const refs = await Promise.all(Array.from({ length: 12 }, (_, i) => j.accept(big(i))));
    const docs = await batches(server.use(journalDbName(prefix, Date.now())));
    expect(docs.flatMap((d) => batchEntries(d)!.map((e) => e.activation)).sort()).to.deep.equal(refs.map((r) => r.activation).sort());
    expect(docs.length).to.be.at.least(4);
    for (const d of docs) expect(JSON.stringify(d).length).to.be.below(2_100_000);
    for (const ref of refs) j.finish(ref);
  });

  it('refuses an entry no store write may carry with LC_BODY_TOO_LARGE (413); entries accepted with it are stored', async () => {
    const j = journal('adadadad');
    const huge: DurableEntry = { ...entry('huge'), request: { query: {}, headers: {}, body: { text: 'x'.repeat(4_000_000) } } };
    const [refused, ok] = await Promise.allSettled([j.accept(huge), j.accept(entry('small', 1))]);
    expect(refused.status).to.equal('rejected');
    const err = (refused as PromiseRejectedResult).reason as LivelyError;
    expect(err.code).to.equal('LC_BODY_TOO_LARGE');
    expect(err.status).to.equal(413);
    expect(err.message).to.match(/stored whole before it is accepted.*over the 4000000/);
    expect(ok.status).to.equal('fulfilled');
    const docs = await batches(server.use(journalDbName(prefix, Date.now())));
    expect(docs.flatMap((d) => batchEntries(d)!.map((e) => e.activation))).to.deep.equal(['small']);
    j.finish((ok as PromiseFulfilledResult<DurableRef>).value);
  });

  it('counts an entry at its stored size, its quotes and backslashes escaped twice: one that would pass the limit only so is refused too', async () => {
    const j = journal('adadadad');
    // 2.2 million characters of JSON, 4.4 million as stored
    const quotes: DurableEntry = { ...entry('quotes'), request: { query: {}, headers: {}, body: { text: '"'.repeat(1_100_000) } } };
    expect(JSON.stringify(quotes).length).to.be.below(4_000_000);
    const err = await j.accept(quotes).then(() => undefined, (e: LivelyError) => e);
    expect(err?.code).to.equal('LC_BODY_TOO_LARGE');
    expect(err?.message).to.match(/would take 44\d{5} characters/);
  });

  it('records the finished entries of a batch still running, so a recovery runs only the others', async () => {
    const old = journal('abababab');
    const refs = await Promise.all(Array.from({ length: 10 }, (_, i) => old.accept(entry(`part-${i}`, i))));
    for (const ref of refs.slice(0, 7)) old.finish(ref);
    await old.close(); // as if it crashed now: three entries unfinished
    const db = server.use<Record<string, unknown>>(refs[0]!.db);
    // part-0 was a batch of its own, deleted once finished; the other batch lists its finished entries.
    const left = await batches(db);
    expect(left).to.have.length(1);
    expect(left[0]!.done!.sort()).to.deep.equal(['part-1', 'part-2', 'part-3', 'part-4', 'part-5', 'part-6']);
    const again = journal('abababab');
    const ran: string[] = [];
    expect(await again.recover((e, ref) => { ran.push(e.activation); again.finish(ref); return { done: Promise.resolve() }; })).to.equal(3);
    expect(ran.sort()).to.deep.equal(['part-7', 'part-8', 'part-9']);
    await again.close();
    expect((await db.info()).doc_count).to.equal(0);
  });

  it('refuses an accept the store does not keep with LC_NOT_PERSISTED', async () => {
    const j = journal('aaaaaaaa');
    const name = journalDbName(prefix, Date.now());
    await server.db.create(name);
    await refuseWrites(name, 'the journal is read-only');
    let err: unknown;
    try { await j.accept(entry('refused')); } catch (e) { err = e; }
    expect(isLivelyError(err, 'LC_NOT_PERSISTED'), String(err)).to.equal(true);
    expect((err as Error).message).to.contain('the journal is read-only');
    expect((err as { status: number }).status).to.equal(503);
  });

  it('makes the day\'s database again when it is deleted under a running journal', async () => {
    const j = journal('aaaaaaaa');
    const first = await j.accept(entry('before'));
    await server.db.destroy(first.db);
    const second = await j.accept(entry('after'));
    expect(second.db).to.equal(first.db);
    const stored = (await batches(server.use(second.db))).flatMap((d) => batchEntries(d)!.map((e) => e.activation));
    expect(stored).to.deep.equal(['after']);
  });

  it('an earlier boot of the same instance is orphaned at once: a new boot claims and runs its entries', async () => {
    const old = journal('aaaaaaaa');
    await old.start(() => undefined); // heartbeat fresh: only the instance name tells it is gone
    await old.accept(entry('left-1'));
    await old.accept(entry('left-2'));
    const again = journal('aaaaaaaa');
    const ran: string[] = [];
    const claimed = await again.recover((e, ref) => { ran.push(e.activation); again.finish(ref); return { done: Promise.resolve() }; });
    expect(claimed).to.equal(2);
    expect(ran.sort()).to.deep.equal(['left-1', 'left-2']);
  });

  it('close() waits for the recovery scan in flight, so a store stopped after it cuts no scan off (nothing logged as failed)', async () => {
    const old = journal('cccccccc');
    for (let i = 0; i < 3; i++) await old.accept(entry(`left-${i}`));
    // The new boot talks to the store through a relay that the "stop" then cuts.
    const proxy = await startTcpProxy(couchUrl());
    closing.push(() => proxy.close());
    const warnings: string[] = [];
    const through = connect(proxy.url);
    const again = new DurableJournal({ server: through, prefix, instance: 'cccccccc', heartbeats: through.use(`${prefix}logs`), logger: warningsKept(warnings) });
    journals.push(again);
    await again.start((_e, ref) => { again.finish(ref); return { done: Promise.resolve() }; });
    // start() has sent the scan's first request and not waited for it
    await again.close();
    proxy.cut();
    await new Promise((r) => setTimeout(r, 200));
    expect(warnings).to.deep.equal([]);
  });

  it('close() does not wait for ever on a scan that cannot end (its re-runs never finish)', async () => {
    const old = journal('dddddddd');
    await old.accept(entry('left-1'));
    await old.accept(entry('left-2'));
    const warnings: string[] = [];
    // one re-run at a time, and the first never finishes: the scan waits on it for the second
    const again = new DurableJournal({ server, prefix, instance: 'dddddddd', heartbeats: server.use(`${prefix}logs`), recoveryConcurrency: 1, logger: warningsKept(warnings) });
    journals.push(again);
    const ran: string[] = [];
    await again.start((e) => { ran.push(e.activation); return { done: new Promise<void>(() => {}) }; });
    await eventually(() => ran.length === 1, 5_000, 'the first re-run');
    const began = Date.now();
    await again.close();
    expect(Date.now() - began).to.be.within(1_500, 10_000);
    expect(ran).to.have.length(1);
    expect(warnings).to.deep.equal([]);
  });

  it('a journal closed while it starts keeps no heartbeat or recovery running after close()', async () => {
    const j = journal('eeeeeeee', 3_000); // a tick every second
    const starting = j.start(() => undefined);
    await j.close();
    await starting;
    const logs = server.use<{ _rev?: string }>(`${prefix}logs`);
    const before = (await logs.get('_local/lively-durable-eeeeeeee'))._rev;
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await logs.get('_local/lively-durable-eeeeeeee'))._rev).to.equal(before);
  });

  it('leaves the entries of a live instance alone, and takes them over once its heartbeat is older than the lease', async () => {
    const live = journal('bbbbbbbb');
    await live.start(() => undefined);
    await live.accept(entry('busy'));
    const other = journal('cccccccc', 60_000);
    expect(await other.recover(() => ({ done: Promise.resolve() }))).to.equal(0);
    await live.close(); // no more heartbeats
    const impatient = journal('dddddddd', 1);
    await eventually(async () => (await impatient.recover((e, ref) => { impatient.finish(ref); return { done: Promise.resolve() }; })) === 1, 5_000, 'the entry taken over');
  });

  it('with several instances recovering at once, each orphan is claimed and run by exactly one (the 409 loser skips it)', async () => {
    const dead = journal('eeeeeeee'); // never started: no heartbeat at all
    await Promise.all(Array.from({ length: 60 }, (_, i) => dead.accept(entry(`orphan-${i}`, i))));
    const runs = new Map<string, number>();
    const rerun = (j: DurableJournal) => (e: DurableEntry, ref: DurableRef) => {
      runs.set(e.activation, (runs.get(e.activation) ?? 0) + 1);
      j.finish(ref);
      return { done: Promise.resolve() };
    };
    const rivals = ['11111111', '22222222', '33333333'].map((n) => journal(n));
    const claimed = await Promise.all(rivals.map((j) => j.recover(rerun(j))));
    expect(claimed.reduce((a, b) => a + b, 0)).to.equal(60);
    expect(runs.size).to.equal(60);
    expect([...runs.values()].every((n) => n === 1)).to.equal(true);
  });

  it('orphans are claimed in the state database: a claim by a live instance stands even where the batch still names its dead owner (a cluster copy not yet updated)', async () => {
    const dead = journal('eeeeeeee');
    const ref = await dead.accept(entry('contested'));
    const live = journal('bbbbbbbb');
    // the live instance won the claim; the batch document, read through another node, still names the dead one
    await server.use(`${prefix}logs`).insert({ _id: `durable-claim-${ref.db}-${ref.batch}`, type: 'durable-claim', owner: live.owner } as never);
    await live.start(() => undefined);
    expect((await server.use<JournalBatch>(ref.db).get(ref.batch)).owner).to.equal(dead.owner);
    const other = journal('cccccccc', 60_000);
    expect(await other.recover(() => ({ done: Promise.resolve() }))).to.equal(0);
    // once the claimer is gone too, the claim is taken over (and the claim document names the new owner)
    await live.close();
    const next = journal('dddddddd', 1);
    await eventually(async () => (await next.recover((e, r) => { next.finish(r); return { done: Promise.resolve() }; })) === 1, 5_000, 'taken over');
    expect((await server.use<{ owner: string }>(`${prefix}logs`).get(`durable-claim-${ref.db}-${ref.batch}`)).owner).to.equal(next.owner);
  });

  it('a batch an earlier version wrote, its entries as an array, is claimed, its unfinished entries run again, and it is deleted once they finish', async () => {
    const db = journalDbName(prefix, Date.now());
    await server.db.create(db);
    await server.use(db).insert({ _id: 'older', type: 'durable', owner: 'ffffffff/zzzz', accepted: Date.now(), entries: [entry('old-1', 1), entry('old-2', 2)], done: ['old-1'] } as never);
    const j = journal('aaaaaaaa');
    const ran: DurableEntry[] = [];
    expect(await j.recover((e, ref) => { ran.push(e); j.finish(ref); return { done: Promise.resolve() }; })).to.equal(1);
    expect(ran).to.deep.equal([entry('old-2', 2)]);
    await j.close();
    expect((await server.use(db).info()).doc_count).to.equal(0);
  });

  it('a recovery scan ends while batches keep being written: it reads the day as it found it, not each batch written since', async () => {
    // Every page the scan reads is followed by a new batch of a live journal, as under a steady
    // stream of durable triggers. The scan must end on its own; 20 pages would be a chase.
    let pages = 0;
    let writer: DurableJournal | undefined;
    const watched = listingThrough(async (list, params) => {
      const page = await list(params);
      if (++pages >= 20) throw new Error('the scan kept reading the batches written after it began');
      await writer!.accept(entry(`live-${pages}`));
      return page;
    });
    writer = new DurableJournal({ server: watched, prefix, instance: 'bbbbbbbb', heartbeats: server.use(`${prefix}logs`), logger: silentLogger });
    journals.push(writer);
    await writer.accept(entry('live-0'));
    expect(await writer.recover(() => { throw new Error('a live batch was run again'); })).to.equal(0);
    expect(pages).to.equal(1);
    expect(writer.stats.accepted).to.equal(2); // the batch written after the scan's page was not read
  });

  it('a day whose batches have all finished is not listed by a scan (its tombstones are not read); one with a batch left is', async () => {
    let lists = 0;
    const counted = listingThrough((list, params) => { lists++; return list(params); });
    const j = new DurableJournal({ server: counted, prefix, instance: 'cdcdcdcd', heartbeats: server.use(`${prefix}logs`), logger: silentLogger });
    journals.push(j);
    const refs = [];
    for (let i = 0; i < 5; i++) refs.push(await j.accept(entry(`done-${i}`, i)));
    for (const ref of refs) j.finish(ref);
    const db = server.use(refs[0]!.db);
    await eventually(async () => (await db.info()).doc_count === 0, 5_000, 'the finished batches deleted');
    expect((await db.changes()).results.filter((r) => r.deleted)).to.have.length(5); // tombstones
    expect(await j.recover(() => { throw new Error('nothing is left to run'); })).to.equal(0);
    expect(lists, 'a day of tombstones only').to.equal(0);
    await j.accept(entry('running'));
    expect(await j.recover(() => { throw new Error('a live batch was run again'); })).to.equal(0);
    expect(lists, 'a day with a live batch').to.equal(1);
  });

  it('a scan lists a day from a minute before its oldest batch at the last scan, not its tombstones before; a full scan, every fullScanMs, lists it whole', async () => {
    const starts: Array<string | undefined> = [];
    const watched = listingThrough((list, params) => { starts.push(params.startkey); return list(params); });
    const fullScanMs = 4_000;
    const j = new DurableJournal({ server: watched, prefix, instance: 'efefefef', heartbeats: server.use(`${prefix}logs`), logger: silentLogger, fullScanMs });
    journals.push(j);
    const done = [];
    for (let i = 0; i < 3; i++) done.push(await j.accept(entry(`finished-${i}`, i)));
    const running = await j.accept(entry('running'));
    for (const ref of done) j.finish(ref);
    const dbName = running.db;
    const db = server.use<Record<string, unknown>>(dbName);
    await eventually(async () => (await db.info()).doc_count === 1, 5_000, 'the finished batches deleted');
    const noRerun = () => { throw new Error('nothing of a live instance is run again'); };
    const t0 = Date.now();
    expect(await j.recover(noRerun)).to.equal(0);
    const t1 = Date.now(); // the first scan began between t0 and t1
    expect(starts, 'the first scan of a boot lists the day whole').to.deep.equal([undefined]);
    const floor = (parseInt(running.batch.slice(0, 8), 36) - 60_000).toString(36);

    // An orphan written since, as a dead instance with a true clock would have: found by the next scan.
    const now36 = Date.now().toString(36);
    const dead = (id: string, n: number) => ({ _id: id, type: 'durable', owner: 'ffffffff/zzzz', accepted: Date.now(), entriesJson: JSON.stringify([entry(`orphan-${n}`, n)]) });
    await db.insert(dead(`${now36}-zzzz-0`, 0));
    // And one from a clock ten minutes behind, below where the next scan starts.
    await db.insert(dead(`${(parseInt(floor, 36) - 540_000).toString(36)}-zzzz-1`, 1));
    const ran: string[] = [];
    const rerun = (e: DurableEntry, ref: DurableRef) => { ran.push(e.activation); j.finish(ref); return { done: Promise.resolve() }; };
    expect(Date.now() - t0, 'the next scan comes before a full one is due').to.be.below(fullScanMs);
    expect(await j.recover(rerun)).to.equal(1);
    expect(starts[1]).to.equal(floor);
    expect(ran).to.deep.equal(['orphan-0']);
    // The full scan lists the day from its start again, and finds the other.
    await new Promise((r) => setTimeout(r, Math.max(0, t1 + fullScanMs + 50 - Date.now())));
    expect(await j.recover(rerun)).to.equal(1);
    expect(starts.at(-1)).to.equal(undefined);
    expect(ran).to.deep.equal(['orphan-0', 'orphan-1']);
  });

  it('a scan reads a day of more batches than one page holds to its end: every orphan is claimed', async () => {
    const db = journalDbName(prefix, Date.now());
    await server.db.create(db);
    const docs = Array.from({ length: 230 }, (_, i) => ({ _id: `b${String(i).padStart(3, '0')}`, type: 'durable', owner: 'ffffffff/zzzz', accepted: Date.now(), entriesJson: JSON.stringify([entry(`orphan-${i}`, i)]) }));
    await server.use(db).bulk({ docs } as never);
    const j = journal('aaaaaaaa');
    const ran = new Set<string>();
    expect(await j.recover((e, ref) => { ran.add(e.activation); j.finish(ref); return { done: Promise.resolve() }; })).to.equal(230);
    expect(ran.size).to.equal(230);
  });

  it('a batch that names no owner is left alone and does not stop the scan: the orphans after it are claimed', async () => {
    const db = journalDbName(prefix, Date.now());
    await server.db.create(db);
    await server.use(db).bulk({ docs: [
      { _id: 'a-ownerless', type: 'durable', accepted: Date.now(), entriesJson: JSON.stringify([entry('nobody-1')]) },
      { _id: 'b-orphan', type: 'durable', owner: 'ffffffff/zzzz', accepted: Date.now(), entriesJson: JSON.stringify([entry('orphan-1')]) },
    ] } as never);
    const j = journal('aaaaaaaa');
    const ran: string[] = [];
    expect(await j.recover((e, ref) => { ran.push(e.activation); j.finish(ref); return { done: Promise.resolve() }; })).to.equal(1);
    expect(ran).to.deep.equal(['orphan-1']);
    expect((await server.use(db).get('a-ownerless') as { owner?: string }).owner).to.equal(undefined);
  });

  it('an entry whose rerun finds nothing to run is finished, not retried forever', async () => {
    const old = journal('ffffffff');
    const ref = await old.accept(entry('gone-event'));
    const again = journal('ffffffff');
    expect(await again.recover(() => undefined)).to.equal(1);
    await again.close();
    expect((await server.use(ref.db).info()).doc_count).to.equal(0);
  });

  it('drops a past day once it holds no entry, and keeps a past day that still does', async () => {
    const empty = `${prefix}durable_20200101`;
    const busy = `${prefix}durable_20200102`;
    await server.db.create(empty);
    await server.db.create(busy);
    await server.use(busy).insert({ _id: 'x', type: 'durable', owner: 'aaaaaaaa/zzzz', accepted: 0, entries: [entry('x')] } as never);
    const j = journal('aaaaaaaa');
    const stop = new Promise<void>(() => undefined); // keeps the claimed entry running
    await j.recover(() => ({ done: stop }));
    const dbs = await server.db.list();
    expect(dbs).to.not.include(empty);
    expect(dbs).to.include(busy);
  });
});

/**
 * An HTTP forwarder to the store at `target` whose requests wait for `gate()` (when it gives a
 * promise) before they go on: a write held in flight, at the wire, whatever client sends it.
 */
async function holdingForwarder(target: string, gate: () => Promise<void> | undefined): Promise<{ url: string; close(): Promise<void> }> {
  const to = new URL(target);
  const srv = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    await gate();
    const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => !['host', 'connection', 'content-length', 'transfer-encoding'].includes(k))) as Record<string, string>;
    const up = await request(`${to.origin}${req.url}`, { method: req.method as 'GET', headers, body: chunks.length ? Buffer.concat(chunks) : undefined });
    const body = Buffer.from(await up.body.arrayBuffer());
    res.writeHead(up.statusCode, { 'content-type': String(up.headers['content-type'] ?? 'application/json'), 'content-length': body.length });
    res.end(body);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  const url = new URL(target);
  url.host = `127.0.0.1:${port}`;
  return { url: url.toString(), close: () => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); }) };
}
