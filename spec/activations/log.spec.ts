import { expect } from 'chai';
import { ActivationLog, expandBatch, type ActivationRecord, type BatchDoc } from '../../src/activations/log.ts';
import { connect } from '../../src/store/couch.ts';
import { silentLogger } from '../../src/shared/log.ts';
import type { DocumentScope } from 'nano';
import { couchUrl, uniquePrefix } from '../support/couch.ts';

function record(i: number, started: number, status: 'ok' | 'error' = 'ok'): ActivationRecord {
  return {
    activation: `act-${i}`, events: ['e1', 'e2'], trigger: 'http', path: '/p', method: 'GET', started, durationMs: 1.234,
    workers: [{ worker: 'w', status, result: { i }, logs: [{ t: started, level: 'info', msg: `line ${i}` }], durationMs: 1, ...(status === 'error' ? { error: { code: 'LC_WORKER_ERROR', message: 'boom' } } : {}) }],
  };
}

async function stored(db: DocumentScope<Record<string, unknown>>): Promise<ActivationRecord[]> {
  const page = await db.list({ include_docs: true });
  return page.rows.map((r) => r.doc as unknown as BatchDoc).filter((d) => d.type === 'activations').flatMap(expandBatch);
}

describe('ActivationLog', () => {
  const nano = connect(couchUrl());

  it('PUT /<logs>/<time>-… - one document per flush holds every record; details for failures and the first of the batch', async () => {
    const name = `${uniquePrefix()}logs`;
    await nano.db.create(name);
    const db = nano.use<Record<string, unknown>>(name);
    const log = new ActivationLog(db, { retentionDays: 7, logger: silentLogger, detailed: 2 });
    const now = Date.now();
    for (let i = 0; i < 5; i++) log.record(record(i, now + i));
    log.record(record(5, now + 5, 'error'));
    await log.flush();
    const page = await db.list();
    expect(page.rows.filter((r) => !r.id.startsWith('_'))).to.have.length(1);
    const recs = await stored(db);
    expect(recs.map((r) => r.activation)).to.deep.equal(['act-0', 'act-1', 'act-2', 'act-3', 'act-4', 'act-5']);
    expect(recs[0]!.events).to.deep.equal(['e1', 'e2']);
    expect(recs[0]!.workers[0]!.result).to.deep.equal({ i: 0 });
    expect(recs[3]!.workers[0]).to.include({ worker: 'w', status: 'ok' });
    expect(recs[3]!.workers[0]!.result).to.equal(undefined); // past the detail budget
    expect(recs[5]!.workers[0]!.error).to.deep.equal({ code: 'LC_WORKER_ERROR', message: 'boom' }); // failures always
    expect(log.written).to.equal(6);
  });

  it('a store that refuses the write keeps the records for the next flush; past the buffer new records are dropped and counted', async () => {
    const name = `${uniquePrefix()}logs`;
    const db = nano.use<Record<string, unknown>>(name); // not created yet: writes fail with 404
    const log = new ActivationLog(db, { retentionDays: 7, logger: silentLogger, maxBuffer: 3 });
    for (let i = 0; i < 5; i++) log.record(record(i, Date.now()));
    expect(log.dropped).to.equal(2);
    await log.flush();
    expect(log.written).to.equal(0);
    await nano.db.create(name);
    await log.flush();
    expect(log.written).to.equal(3);
    expect((await stored(db)).map((r) => r.activation)).to.deep.equal(['act-0', 'act-1', 'act-2']);
  });

  it('prune deletes batches older than the retention period and keeps the rest', async () => {
    const name = `${uniquePrefix()}logs`;
    await nano.db.create(name);
    const db = nano.use<Record<string, unknown>>(name);
    const log = new ActivationLog(db, { retentionDays: 7, logger: silentLogger });
    const now = Date.now();
    log.record(record(1, now - 10 * 86_400_000));
    await log.flush();
    log.record(record(2, now - 60_000));
    await log.flush();
    expect(await log.prune(now)).to.equal(1);
    expect((await stored(db)).map((r) => r.activation)).to.deep.equal(['act-2']);
  });
});
