import { expect } from 'chai';
import { ActivationLog, type ActivationRecord } from '../../src/activations/recorder.ts';
import { listDayDbs } from '../../src/activations/record-days.ts';
import { parseBatchId } from '../../src/activations/batch.ts';
import type { ActivationQuery } from '../../src/activations/reader.ts';
import { connect } from '../../src/store/couch.ts';
import { isLivelyError } from '../../src/shared/errors.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import type { ActivationStatus } from '../../src/shared/message.ts';
import { couchUrl, dropPrefix, uniquePrefix } from '../support/couch.ts';

/** A small deterministic generator, so a failure can be replayed. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

const idAt = (t: number, n: number) => `spec-${t.toString(36)}-${n.toString(36)}`;
const newestFirst = (a: ActivationRecord, b: ActivationRecord) =>
  b.started - a.started || (a.activation < b.activation ? 1 : a.activation > b.activation ? -1 : 0);

/**
 * Records over three UTC days, in clusters around the midnights, recorded in shuffled order
 * and flushed every few records: batches of different flushes overlap in time, late records
 * land in batches of their own, and some records share a start time.
 */
function dataset(): ActivationRecord[] {
  const rand = rng(42);
  const clusters = [Date.UTC(2026, 4, 1, 23, 59, 50), Date.UTC(2026, 4, 2, 12), Date.UTC(2026, 4, 2, 23, 59, 55), Date.UTC(2026, 4, 3, 8)];
  const events = [['e1'], ['e2'], ['e1', 'e2'], ['e3']];
  const statuses: ActivationStatus[] = ['ok', 'ok', 'ok', 'error', 'timeout'];
  const out: ActivationRecord[] = [];
  for (let n = 0; n < 160; n++) {
    const base = clusters[n % clusters.length]!;
    const started = n % 17 === 0 && n > 0 ? out[n - 1]!.started : base + Math.floor(rand() * 40_000);
    const s1 = statuses[Math.floor(rand() * statuses.length)]!;
    const workers = [{ worker: 'w1', status: s1, logs: [], durationMs: 1 }];
    if (n % 3 === 0) workers.push({ worker: 'w2', status: 'ok' as ActivationStatus, logs: [], durationMs: 1 });
    out.push({
      activation: idAt(started, n), events: events[n % events.length]!, trigger: 'http', path: '/p', method: 'GET',
      started, durationMs: 1, workers, ...(n % 11 === 0 && s1 !== 'ok' ? { dead: true } : {}),
    });
  }
  return out;
}

describe('reading activation records', function () {
  this.timeout(60_000);
  const nano = connect(couchUrl());
  const prefix = uniquePrefix();
  const log = new ActivationLog(nano, { prefix, retentionDays: 7, maxRecords: 1_000_000, logger: silentLogger, detailed: 5 });
  const all = dataset();
  const expected = [...all].sort(newestFirst);

  before(async () => {
    const order = [...all];
    const rand = rng(7);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (let i = 0; i < order.length; i++) {
      log.record(order[i]!);
      if (i % 23 === 22) await log.flush();
    }
    await log.flush();
  });
  after(() => dropPrefix(prefix));

  async function everything(q: Omit<ActivationQuery, 'limit' | 'before'>, limit: number): Promise<{ ids: string[]; pages: number }> {
    const ids: string[] = [];
    let before: string | undefined;
    let pages = 0;
    for (;;) {
      const page = await log.query({ ...q, limit, ...(before !== undefined ? { before } : {}) });
      pages++;
      expect(page.activations.length).to.be.at.most(limit);
      ids.push(...page.activations.map((r) => r.activation));
      if (page.next === undefined) return { ids, pages };
      before = page.next;
      expect(pages, 'paging ends').to.be.below(500);
    }
  }

  it('the records are spread over three day databases, in batches whose times overlap', async () => {
    const days = await listDayDbs(nano, prefix);
    expect(days.map((d) => d.name.slice(prefix.length))).to.deep.equal(['logs-20260503', 'logs-20260502', 'logs-20260501']);
    const batches = (await Promise.all(days.map((d) => nano.use(d.name).list()))).flatMap((p) => p.rows.map((r) => parseBatchId(r.id)!));
    const overlapping = batches.filter((a) => batches.some((b) => b !== a && b.lo <= a.hi && a.lo <= b.hi));
    expect(overlapping.length).to.be.at.least(10);
    expect(batches.length).to.be.within(20, 200);
  });

  it('lists every record newest first (start time, then activation id)', async () => {
    const page = await log.query({ limit: 1000 });
    expect(page.next).to.equal(undefined);
    expect(page.activations.map((r) => r.activation)).to.deep.equal(expected.map((r) => r.activation));
  });

  for (const limit of [2, 9, 50]) {
    it(`pages of ${limit} follow "next" across batches and days with no record twice and none left out`, async () => {
      const { ids, pages } = await everything({}, limit);
      expect(ids).to.deep.equal(expected.map((r) => r.activation));
      expect(pages).to.be.at.least(Math.ceil(all.length / limit));
    });
  }

  const filters: Array<[string, Omit<ActivationQuery, 'limit'>, (r: ActivationRecord) => boolean]> = [
    ['event', { event: 'e1' }, (r) => r.events.includes('e1')],
    ['worker', { worker: 'w2' }, (r) => r.workers.some((w) => w.worker === 'w2')],
    ['status=ok', { status: 'ok' }, (r) => r.workers.some((w) => w.status === 'ok')],
    ['status=error', { status: 'error' }, (r) => r.workers.some((w) => w.status === 'error')],
    ['status=timeout', { status: 'timeout' }, (r) => r.workers.some((w) => w.status === 'timeout')],
    ['status=dead', { status: 'dead' }, (r) => r.dead === true],
    ['since', { since: Date.UTC(2026, 4, 2, 12, 0, 20) }, (r) => r.started >= Date.UTC(2026, 4, 2, 12, 0, 20)],
    ['event, worker, status and since together', { event: 'e2', worker: 'w1', status: 'error', since: Date.UTC(2026, 4, 2) },
      (r) => r.events.includes('e2') && r.workers.some((w) => w.worker === 'w1') && r.workers.some((w) => w.status === 'error') && r.started >= Date.UTC(2026, 4, 2)],
  ];
  for (const [name, q, keep] of filters) {
    it(`filters by ${name}, in one page and in pages of 4`, async () => {
      const want = expected.filter(keep).map((r) => r.activation);
      expect(want.length, 'the filter selects some records, not all').to.be.within(1, all.length - 1);
      const one = await log.query({ ...q, limit: 1000 });
      expect(one.activations.map((r) => r.activation)).to.deep.equal(want);
      expect((await everything(q, 4)).ids).to.deep.equal(want);
    });
  }

  it('GET one record by id: found in the day and batch its id points to, with every field', async () => {
    for (const want of [all[0]!, all[17]!, all[101]!, all[159]!]) {
      const got = await log.get(want.activation);
      expect(got, want.activation).to.exist;
      expect(got!.activation).to.equal(want.activation);
      expect(got!.started).to.equal(want.started);
      expect(got!.workers.map((w) => [w.worker, w.status])).to.deep.equal(want.workers.map((w) => [w.worker, w.status]));
      expect(got!.dead).to.equal(want.dead);
    }
    expect(await log.get(idAt(all[0]!.started, 9999))).to.equal(undefined); // a time with records, not this one
    expect(await log.get(idAt(Date.UTC(2020, 0, 1), 1))).to.equal(undefined); // a day with no database
    expect(await log.get('not-an-id')).to.equal(undefined);
  });

  it('a "before" that is not a cursor is LC_BAD_REQUEST naming the parameter', async () => {
    for (const before of ['garbage', Buffer.from('[1]').toString('base64url'), Buffer.from('{"a":1}').toString('base64url')]) {
      const err = await log.query({ limit: 5, before }).then(() => undefined, (e: unknown) => e);
      expect(isLivelyError(err, 'LC_BAD_REQUEST'), before).to.equal(true);
      expect((err as Error).message).to.contain('before');
    }
  });
});

describe('reading activation records: a filter that matches little', () => {
  const nano = connect(couchUrl());
  const prefix = uniquePrefix();
  const log = new ActivationLog(nano, { prefix, retentionDays: 7, maxRecords: 1_000_000, logger: silentLogger, pageBudget: { batches: 20, records: 1_000 } });
  const t0 = Date.UTC(2026, 5, 1, 10);
  after(() => dropPrefix(prefix));

  it('answers after a bounded amount of reading with a cursor to go on from; following it finds the rare record and ends', async () => {
    // 150 batches: each record starts further from the others than a batch may span.
    for (let i = 0; i < 150; i++) {
      log.record({ activation: idAt(t0 + i * 6_000, i), events: [i === 3 ? 'rare' : 'common'], trigger: 'http', started: t0 + i * 6_000, durationMs: 1, workers: [] });
    }
    await log.flush();
    const first = await log.query({ event: 'rare', limit: 10 });
    expect(first.activations).to.deep.equal([]);
    expect(first.next, 'more to read').to.be.a('string');
    const found: string[] = [];
    let before: string | undefined = first.next;
    let pages = 1;
    while (before !== undefined) {
      const page = await log.query({ event: 'rare', limit: 10, before });
      found.push(...page.activations.map((r) => r.activation));
      before = page.next;
      pages++;
    }
    expect(found).to.deep.equal([idAt(t0 + 18_000, 3)]);
    expect(pages).to.be.at.least(2);
  });
});

describe('reading activation records: the store away', () => {
  it('a list or a lookup while the store cannot be reached is LC_STORE_UNAVAILABLE (502), not an internal error', async () => {
    const log = new ActivationLog(connect('http://127.0.0.1:9'), { prefix: uniquePrefix(), retentionDays: 7, maxRecords: 10, logger: silentLogger });
    for (const read of [() => log.query({ limit: 5 }), () => log.get(idAt(Date.now(), 1))]) {
      const err = await read().then(() => undefined, (e: unknown) => e);
      expect(isLivelyError(err, 'LC_STORE_UNAVAILABLE')).to.equal(true);
      expect((err as { status: number }).status).to.equal(502);
    }
  });
});
