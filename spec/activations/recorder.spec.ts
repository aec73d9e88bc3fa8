import { expect } from 'chai';
import { request } from 'undici';
import { ActivationLog, expandBatch, type ActivationRecord, type BatchDoc } from '../../src/activations/recorder.ts';
import { dayDbName } from '../../src/activations/record-days.ts';
import { kBatchSpanMs, parseBatchId } from '../../src/activations/batch.ts';
import { connect } from '../../src/store/couch.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { couchUrl, dropPrefix, refuseWrites, uniquePrefix } from '../support/couch.ts';

const day1 = Date.UTC(2026, 0, 10, 12, 0, 0);
const day2 = Date.UTC(2026, 0, 11, 0, 0, 1);

function record(i: number, started: number, status: 'ok' | 'error' = 'ok'): ActivationRecord {
  return {
    activation: `act-${i}`, events: ['e1', 'e2'], trigger: 'http', path: '/p', method: 'GET', started, durationMs: 1.234,
    workers: [{ worker: 'w', status, result: { i }, logs: [{ t: started, level: 'info', msg: `line ${i}` }], durationMs: 1, ...(status === 'error' ? { error: { code: 'LC_WORKER_ERROR', message: 'boom' } } : {}) }],
    input: { trigger: 'http', method: 'GET', path: '/p', params: { i }, request: { query: { i }, headers: { host: 'x', authorization: 'Basic c2VjcmV0', cookie: 'AuthSession=abc' }, body: undefined } },
  };
}

describe('ActivationLog', () => {
  const nano = connect(couchUrl());
  const prefixes: string[] = [];
  const fresh = (opts: Partial<ConstructorParameters<typeof ActivationLog>[1]> = {}) => {
    const prefix = uniquePrefix();
    prefixes.push(prefix);
    return { prefix, log: new ActivationLog(nano, { prefix, retentionDays: 7, maxRecords: 1_000_000, logger: silentLogger, ...opts }) };
  };
  after(async () => { for (const p of prefixes) await dropPrefix(p); });

  async function stored(name: string): Promise<ActivationRecord[]> {
    const page = await nano.use(name).list({ include_docs: true });
    return page.rows.map((r) => r.doc as unknown as BatchDoc).filter((d) => d.type === 'activations').flatMap(expandBatch);
  }

  it('PUT /<prefix>logs-YYYYMMDD/<batch> - one document per flush holds every record; details and input for failures and the first of the batch', async () => {
    const { prefix, log } = fresh({ detailed: 2 });
    for (let i = 0; i < 5; i++) log.record(record(i, day1 + i));
    log.record(record(5, day1 + 5, 'error'));
    await log.flush();
    const name = dayDbName(prefix, day1);
    expect(name).to.equal(`${prefix}logs-20260110`);
    const page = await nano.use(name).list();
    expect(page.rows).to.have.length(1);
    expect(parseBatchId(page.rows[0]!.id)).to.include({ lo: day1, hi: day1 + 5, count: 6 });
    const recs = await stored(name);
    expect(recs.map((r) => r.activation)).to.deep.equal(['act-0', 'act-1', 'act-2', 'act-3', 'act-4', 'act-5']);
    expect(recs[0]!.events).to.deep.equal(['e1', 'e2']);
    expect(recs[0]!.workers[0]!.result).to.deep.equal({ i: 0 });
    expect(recs[0]!.input).to.deep.include({ trigger: 'http', method: 'GET', path: '/p', params: { i: 0 } });
    expect(recs[3]!.workers[0]).to.include({ worker: 'w', status: 'ok' });
    expect(recs[3]!.workers[0]!.result).to.equal(undefined); // past the detail budget
    expect(recs[3]!.input).to.equal(undefined);
    expect(recs[5]!.workers[0]!.error).to.deep.equal({ code: 'LC_WORKER_ERROR', message: 'boom' }); // failures always
    expect(recs[5]!.workers[0]!.logs.map((l) => l.msg)).to.deep.equal(['line 5']);
    expect(recs[5]!.input!.params).to.deep.equal({ i: 5 });
    expect(log.written).to.equal(6);
  });

  it('a stored input keeps the request but never its credentials (Authorization, Cookie)', async () => {
    const { prefix, log } = fresh();
    const rec = record(1, day1, 'error');
    log.record(rec);
    await log.flush();
    const [got] = await stored(dayDbName(prefix, day1));
    expect(got!.input!.request!.headers).to.deep.equal({ host: 'x' });
    expect(got!.input!.request!.query).to.deep.equal({ i: 1 });
    expect(rec.input!.request!.headers.authorization, 'the caller\'s request is left as it was').to.equal('Basic c2VjcmV0');
  });

  it('an input over 64 KiB (a large request body) is not kept; the rest of the record is', async () => {
    const { prefix, log } = fresh();
    const big = record(1, day1, 'error');
    big.input!.request!.body = 'x'.repeat(100 * 1024);
    log.record(big);
    log.record(record(2, day1 + 1, 'error'));
    await log.flush();
    const [a, b] = await stored(dayDbName(prefix, day1));
    expect(a!.input).to.equal(undefined);
    expect(a!.workers[0]!.error!.message).to.equal('boom');
    expect(b!.input).to.exist;
  });

  it('parent, rerunOf, dead and per-worker attempts survive storage, with and without details', async () => {
    const { prefix, log } = fresh({ detailed: 0 });
    const ok = record(1, day1);
    ok.parent = 'act-0';
    ok.rerunOf = 'act-old';
    ok.workers = [{ worker: 'w:x', status: 'ok', logs: [], durationMs: 1, attempts: 3 }, { worker: 'v', status: 'ok', logs: [], durationMs: 1 }];
    const dead = record(2, day1 + 1, 'error');
    dead.dead = true;
    dead.workers[0]!.attempts = 5;
    log.record(ok);
    log.record(dead);
    log.record(record(3, day1 + 2));
    await log.flush();
    const [a, b, c] = await stored(dayDbName(prefix, day1));
    expect(a).to.deep.include({ parent: 'act-0', rerunOf: 'act-old' });
    expect(a!.dead).to.equal(undefined);
    expect(a!.workers).to.deep.equal([
      { worker: 'w:x', status: 'ok', logs: [], durationMs: 0, attempts: 3 },
      { worker: 'v', status: 'ok', logs: [], durationMs: 0 },
    ]);
    expect(b!.dead).to.equal(true);
    expect(b!.workers[0]).to.include({ status: 'error', attempts: 5 });
    expect(b!.input, 'a dead activation keeps what a rerun needs').to.exist;
    expect(c).to.not.have.any.keys('parent', 'rerunOf', 'dead', 'input');
  });

  it('records go to the database of their start day; records started further apart than the batch span get their own batch', async () => {
    const { prefix, log } = fresh();
    log.record(record(1, day1));
    log.record(record(2, day2));
    log.record(record(3, day1 + 1));
    log.record(record(4, day1 + kBatchSpanMs + 10)); // a late finisher of a batch that started long before
    await log.flush();
    expect((await stored(dayDbName(prefix, day1))).map((r) => r.activation).sort()).to.deep.equal(['act-1', 'act-3', 'act-4']);
    expect((await stored(dayDbName(prefix, day2))).map((r) => r.activation)).to.deep.equal(['act-2']);
    const ids = (await nano.use(dayDbName(prefix, day1)).list()).rows.map((r) => parseBatchId(r.id)!);
    expect(ids.map((b) => b.count).sort()).to.deep.equal([1, 2]);
    for (const b of ids) expect(b.hi - b.lo).to.be.at.most(kBatchSpanMs);
  });

  it('a day database is readable by admins only: records hold results, logs and inputs', async () => {
    const { prefix, log } = fresh();
    log.record(record(1, day1));
    await log.flush();
    const security = await nano.request({ db: dayDbName(prefix, day1), path: '_security' });
    expect(security.members.roles).to.deep.equal(['_admin']);
    const anonymous = new URL(couchUrl());
    anonymous.username = '';
    anonymous.password = '';
    const res = await request(`${anonymous.origin}/${encodeURIComponent(dayDbName(prefix, day1))}/_all_docs`);
    await res.body.dump();
    expect(res.statusCode).to.be.oneOf([401, 403]);
  });

  it('a store that refuses the write keeps the records for the next flush; past the buffer new records are dropped and counted', async () => {
    const { prefix, log } = fresh({ maxBuffer: 3 });
    const name = dayDbName(prefix, day1);
    // A day database that refuses documents, as a store with a full disk or a bad design doc would.
    await nano.db.create(name);
    const allow = await refuseWrites(name, 'not now');
    for (let i = 0; i < 5; i++) log.record(record(i, day1 + i));
    expect(log.dropped).to.equal(2);
    await log.flush();
    await log.flush();
    expect(log.written).to.equal(0);
    await allow();
    await log.flush();
    expect(log.written).to.equal(3);
    expect(log.dropped).to.equal(2);
    expect((await stored(name)).map((r) => r.activation)).to.deep.equal(['act-0', 'act-1', 'act-2']);
  });

  it('a record whose start time is not a number is kept under the time it was recorded, and the log goes on', async () => {
    const { log } = fresh();
    const odd = record(1, day1);
    odd.started = Number.NaN;
    const before = Date.now();
    log.record(odd);
    log.record(record(2, day1));
    await log.flush();
    expect(log.written).to.equal(2);
    const recs = (await log.query({ limit: 10 })).activations;
    expect(recs.map((r) => r.activation)).to.deep.equal(['act-1', 'act-2']);
    expect(recs[0]!.started).to.be.at.least(before);
  });

  it('a day database dropped while the log runs (by another instance\'s retention) is created again at the next flush, and nothing is lost', async () => {
    const { prefix, log } = fresh();
    const name = dayDbName(prefix, day1);
    log.record(record(1, day1));
    await log.flush();
    await nano.db.destroy(name);
    log.record(record(2, day1 + 1));
    await log.flush(); // finds the database gone: keeps the batch
    expect(log.written).to.equal(1);
    await log.flush();
    expect(log.written).to.equal(2);
    expect((await stored(name)).map((r) => r.activation)).to.deep.equal(['act-2']);
    expect((await nano.request({ db: name, path: '_security' })).members.roles).to.deep.equal(['_admin']);
  });

  /** A failed record whose worker wrote `lines` log lines of `chars` characters each. */
  function noisy(i: number, started: number, lines: number, chars: number): ActivationRecord {
    const rec = record(i, started, 'error');
    rec.workers[0]!.logs = Array.from({ length: lines }, (_, k) => ({ t: started, level: 'info' as const, msg: `${i}/${k} ${'x'.repeat(chars)}` }));
    return rec;
  }

  it('a log line or error message over 4 KiB is kept cut, saying how much was left out; the caller\'s outcome is left as it was', async () => {
    const { prefix, log } = fresh();
    const rec = noisy(1, day1, 2, 10_000);
    rec.workers[0]!.error!.message = 'e'.repeat(5_000);
    log.record(rec);
    await log.flush();
    const [got] = await stored(dayDbName(prefix, day1));
    const logs = got!.workers[0]!.logs.map((l) => l.msg);
    expect(logs).to.have.length(2);
    for (const msg of logs) expect(msg).to.match(/^1\/\d x+… \(\d+ more characters not kept\)$/).and.have.length.below(4_200);
    expect(logs[0]!.slice(0, 4_096)).to.equal(rec.workers[0]!.logs[0]!.msg.slice(0, 4_096));
    expect(got!.workers[0]!.error!.message).to.equal(`${'e'.repeat(4_096)}… (904 more characters not kept)`);
    expect(rec.workers[0]!.logs[0]!.msg).to.have.length.above(10_000);
    expect(rec.workers[0]!.error!.message).to.have.length(5_000);
  });

  it('a cut never ends inside a character: a text of emoji is cut before a surrogate pair it would split', async () => {
    const { prefix, log } = fresh();
    const rec = record(1, day1, 'error');
    rec.workers[0]!.error!.message = `a${'\u{1F600}'.repeat(3_000)}`; // 6,001 UTF-16 units: unit 4,096 opens a pair
    log.record(rec);
    await log.flush();
    const [got] = await stored(dayDbName(prefix, day1));
    expect(got!.workers[0]!.error!.message).to.equal(`a${'\u{1F600}'.repeat(2_047)}… (1906 more characters not kept)`);
  });

  it('a batch is sealed once its details reach about 2,000,000 characters: noisy failures go into several documents, none near the store\'s limit, each record with its details', async () => {
    const { prefix, log } = fresh();
    for (let i = 0; i < 8; i++) log.record(noisy(i, day1 + i, 200, 4_000)); // about 0.8 MB of logs each
    await log.flush();
    const name = dayDbName(prefix, day1);
    const page = await nano.use(name).list({ include_docs: true });
    expect(page.rows.length).to.be.at.least(3);
    for (const row of page.rows) expect(JSON.stringify(row.doc).length).to.be.below(4_000_000);
    const recs = await stored(name);
    expect(recs.map((r) => r.activation).sort()).to.deep.equal(Array.from({ length: 8 }, (_, i) => `act-${i}`));
    for (const r of recs) expect(r.workers[0]!.logs).to.have.length(200);
    expect(log.written).to.equal(8);
  });

  it('a batch the store refuses as too large (CouchDB\'s max_document_size) is written again without its details, and the batches after it are written', async () => {
    const { prefix, log } = fresh({ maxDetailChars: 1e9 }); // no sealing by size: one batch of about 10 MB
    const name = dayDbName(prefix, day1);
    for (let i = 0; i < 12; i++) log.record(noisy(i, day1 + i, 200, 4_000));
    await log.flush();
    expect(log.written).to.equal(12);
    expect(log.dropped).to.equal(0);
    const recs = await stored(name);
    expect(recs.map((r) => r.activation).sort()).to.deep.equal(Array.from({ length: 12 }, (_, i) => `act-${i}`).sort());
    for (const r of recs) {
      expect(r.workers[0]).to.include({ worker: 'w', status: 'error' });
      expect(r.workers[0]!.logs).to.deep.equal([]); // its details were not kept
      expect(r.input).to.equal(undefined);
    }
    log.record(record(20, day1 + 100, 'error'));
    await log.flush();
    expect(log.written).to.equal(13);
    const after = (await stored(name)).find((r) => r.activation === 'act-20');
    expect(after!.workers[0]!.error).to.deep.equal({ code: 'LC_WORKER_ERROR', message: 'boom' });
  });

  it('a batch the store refuses even without its details is dropped and counted, and the batches after it are written', async function () {
    this.timeout(60_000);
    // 350,000 records with paths of their own: about 9 MB of string table, over 8,000,000 bytes
    const { prefix, log } = fresh({ maxBatch: 1_000_000, maxBuffer: 1_000_000, detailed: 0 });
    const name = dayDbName(prefix, day1);
    for (let i = 0; i < 350_000; i++) {
      log.record({ activation: `act-${i}`, events: ['e'], trigger: 'http', path: `/a/rather/long/path/number/${i}`, method: 'GET', started: day1 + (i % 1_000), durationMs: 1, workers: [{ worker: 'w', status: 'ok', logs: [], durationMs: 1 }] });
    }
    await log.flush();
    expect(log.dropped).to.equal(350_000);
    expect(log.written).to.equal(0);
    log.record(record(1, day1, 'error'));
    await log.flush();
    expect(log.written).to.equal(1);
    expect((await stored(name)).map((r) => r.activation)).to.deep.equal(['act-1']);
  });

  it('a prefix that cannot name a day database is refused when the log is made', () => {
    expect(() => new ActivationLog(nano, { prefix: 'Bad Prefix', retentionDays: 7, maxRecords: 10, logger: silentLogger }))
      .to.throw(/invalid CouchDB database name/);
  });
});
