import { expect } from 'chai';
import { ActivationLog, type ActivationRecord } from '../../src/activations/recorder.ts';
import { dayDbName, listDayDbs } from '../../src/activations/record-days.ts';
import { kDayMs, parseBatchId } from '../../src/activations/batch.ts';
import { connect } from '../../src/store/couch.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { couchUrl, dropPrefix, uniquePrefix } from '../support/couch.ts';
import { warningsKept } from '../support/logger.ts';

const now = Date.UTC(2026, 2, 20, 9, 30);
const daysAgo = (n: number, ms = 0) => Date.UTC(2026, 2, 20 - n, 6) + ms;

function rec(id: string, started: number): ActivationRecord {
  return { activation: id, events: ['e'], trigger: 'http', started, durationMs: 1, workers: [{ worker: 'w', status: 'ok', logs: [], durationMs: 1 }] };
}

describe('activation record retention', () => {
  const nano = connect(couchUrl());
  const prefixes: string[] = [];
  const fresh = (maxRecords = 1_000_000, retentionDays = 7) => {
    const prefix = uniquePrefix();
    prefixes.push(prefix);
    return { prefix, log: new ActivationLog(nano, { prefix, retentionDays, maxRecords, logger: silentLogger }) };
  };
  after(async () => { for (const p of prefixes) await dropPrefix(p); });

  const dayNames = async (prefix: string) => (await listDayDbs(nano, prefix)).map((d) => d.name.slice(prefix.length));
  const recordCount = async (name: string) => (await nano.use(name).list()).rows.reduce((n, r) => n + (parseBatchId(r.id)?.count ?? 0), 0);

  it('drops whole day databases past logRetentionDays and keeps the rest', async () => {
    const { prefix, log } = fresh(1_000_000, 7);
    for (const n of [0, 1, 7, 8, 30]) log.record(rec(`a${n}`, daysAgo(n)));
    await log.flush();
    expect(await dayNames(prefix)).to.deep.equal(['logs-20260320', 'logs-20260319', 'logs-20260313', 'logs-20260312', 'logs-20260218']);
    const result = await log.prune(now);
    // 7 days back is 2026-03-13 09:30: the 13th still has records inside the period, the 12th has none.
    expect(result.droppedDays.map((d) => d.slice(prefix.length)).sort()).to.deep.equal(['logs-20260218', 'logs-20260312']);
    expect(await dayNames(prefix)).to.deep.equal(['logs-20260320', 'logs-20260319', 'logs-20260313']);
    expect((await log.prune(now)).droppedDays).to.deep.equal([]);
    // The next day, the 13th goes too.
    expect((await log.prune(now + kDayMs)).droppedDays).to.deep.equal([`${prefix}logs-20260313`]);
  });

  it('past logMaxRecords drops the oldest days whole and deletes the oldest batches of the oldest day kept', async () => {
    const { prefix, log } = fresh(10);
    // 4 records two days ago, 6 yesterday (three batches of 2: spread over more than the batch span), 3 today.
    for (let i = 0; i < 4; i++) log.record(rec(`old${i}`, daysAgo(2, i)));
    for (let i = 0; i < 6; i++) log.record(rec(`mid${i}`, daysAgo(1, Math.floor(i / 2) * 60_000 + i)));
    for (let i = 0; i < 3; i++) log.record(rec(`new${i}`, daysAgo(0, i)));
    await log.flush();
    expect((await nano.use(dayDbName(prefix, daysAgo(1))).list()).rows).to.have.length(3);
    const result = await log.prune(now);
    // 3 + 6 = 9 ≤ 10 but + 4 = 13 > 10: two days ago would keep none of its batches, so it is
    // dropped whole; yesterday keeps all its batches.
    expect(result.droppedDays).to.deep.equal([dayDbName(prefix, daysAgo(2))]);
    expect(result.deletedBatches).to.equal(0);
    expect(await dayNames(prefix)).to.deep.equal(['logs-20260320', 'logs-20260319']);

    const small = fresh(6);
    for (let i = 0; i < 4; i++) small.log.record(rec(`old${i}`, daysAgo(2, i)));
    for (let i = 0; i < 6; i++) small.log.record(rec(`mid${i}`, daysAgo(1, Math.floor(i / 2) * 60_000 + i)));
    for (let i = 0; i < 3; i++) small.log.record(rec(`new${i}`, daysAgo(0, i)));
    await small.log.flush();
    const r2 = await small.log.prune(now);
    // 3 today + 6 yesterday = 9 > 6: the day before goes whole, and yesterday, now the oldest
    // day kept, loses its oldest batches (2 of 3).
    expect(r2.droppedDays).to.deep.equal([dayDbName(small.prefix, daysAgo(2))]);
    expect(r2).to.include({ deletedBatches: 2, deletedRecords: 4 });
    expect(await recordCount(dayDbName(small.prefix, daysAgo(1)))).to.equal(2);
    const page = await small.log.query({ limit: 100 });
    expect(page.activations.map((r) => r.activation)).to.deep.equal(['new2', 'new1', 'new0', 'mid5', 'mid4']);
    // Nothing more to do: the counts are read again only where the database changed.
    expect(await small.log.prune(now)).to.include({ deletedBatches: 0, deletedRecords: 0 });
  });

  it('documents of earlier versions in <prefix>logs that start with their ISO time are deleted after the retention period; the rest of the runtime state stays', async () => {
    const { prefix, log } = fresh(1_000_000, 7);
    await nano.db.create(`${prefix}logs`);
    const state = nano.use(`${prefix}logs`);
    await state.bulk({ docs: [
      { _id: `${new Date(daysAgo(10)).toISOString()}-act-1-0`, type: 'activations' },
      { _id: `${new Date(daysAgo(1)).toISOString()}-tick-e`, type: 'tick' },
      { _id: 'lease-e', type: 'lease' },
    ] });
    expect((await log.prune(now)).legacyDeleted).to.equal(1);
    expect((await state.list()).rows.map((r) => r.id).sort()).to.deep.equal([`${new Date(daysAgo(1)).toISOString()}-tick-e`, 'lease-e']);
  });

  it('a store that fails during pruning is logged, not thrown', async () => {
    const warnings: string[] = [];
    const prefix = uniquePrefix();
    prefixes.push(prefix);
    const broken = new ActivationLog(connect('http://127.0.0.1:9'), {
      prefix, retentionDays: 1, maxRecords: 10,
      logger: warningsKept(warnings),
    });
    expect(await broken.prune(now)).to.include({ deletedBatches: 0, deletedRecords: 0 });
    expect(warnings).to.deep.equal(['pruning activation records failed']);
  });
});
