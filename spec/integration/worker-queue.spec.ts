/**
 * A worker's own queue limit (`"queue"` in its document) on the triggers that do not answer
 * HTTP: a schedule tick that finds the worker busy and its queue full is skipped and logged (a
 * job that must never overlap itself), while a change waits for room and is never skipped.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeConfig } from '../../src/config/index.ts';
import { Runtime } from '../../src/runtime.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { connect } from '../../src/store/couch.ts';
import { ManualClock } from '../support/clock.ts';
import { couchUrl, uniquePrefix } from '../support/couch.ts';
import { eventually } from '../support/runtime.ts';

const att = (code: string) => ({ content_type: 'application/javascript', data: Buffer.from(code).toString('base64') });

/**
 * Appends what it was fired for to the file its arguments name, then takes `ms`, or (with
 * `hold`) waits until the file `hold` names exists, so that a spec decides when it ends.
 */
const exclusive = att(`const fs = require('node:fs');
module.exports = async (msg) => {
  const what = msg.trigger === 'schedule' ? new Date(msg.tick.at).toISOString() : msg.change.id;
  fs.appendFileSync(msg.arguments.file, 'start ' + what + '\\n');
  await new Promise((r) => setTimeout(r, msg.arguments.ms));
  while (msg.arguments.hold && !fs.existsSync(msg.arguments.hold)) await new Promise((r) => setTimeout(r, 10));
  fs.appendFileSync(msg.arguments.file, 'end ' + what + '\\n');
  return { what };
};`);

const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n') : []);

describe('a worker\'s queue limit and the triggers that do not answer HTTP', function () {
  this.timeout(30_000);
  const T0 = Date.UTC(2026, 0, 5, 10, 0, 0, 500);
  const clock = new ManualClock(T0);
  const logged: string[] = [];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lively-queue-'));
  const prefix = uniquePrefix();
  const inbox = `${prefix}inbox`;
  let rt: Runtime;

  before(async () => {
    await connect(couchUrl()).db.create(inbox);
    const config = makeConfig({ couchUrl: couchUrl(), port: 0, dataDir: dir, threads: 1, sample: false, logLevel: 'warn', dbPrefix: prefix });
    rt = await new Runtime({ config, clock, logger: createLogger('warn', (l) => logged.push(l)) }).start();
    await rt.db.workers.bulk({ docs: [
      { _id: 'ticker', delegate: 'index.js', concurrency: 1, queue: 0, _attachments: { 'index.js': exclusive } },
      { _id: 'reader', delegate: 'index.js', concurrency: 1, queue: 0, _attachments: { 'index.js': exclusive } },
    ] });
    await rt.db.events.bulk({ docs: [
      { _id: 'every_second', trigger: [{ schedule: { every: '1s' } }], workers: { ticker: { file: path.join(dir, 'ticks.log'), ms: 0, hold: path.join(dir, 'go') } } },
      { _id: 'on_inbox', trigger: [{ changes: { db: inbox } }], workers: { reader: { file: path.join(dir, 'changes.log'), ms: 50 } } },
    ] });
    await eventually(() => !!rt.catalog.get('every_second') && rt.changesTriggers!.feeds('on_inbox') === 1, 10_000, 'events loaded and the feed started');
  });
  after(async () => {
    await rt.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a tick that finds its worker busy with no queue is skipped and logged; the next tick runs; runs never overlap', async () => {
    const file = path.join(dir, 'ticks.log');
    clock.advance(1_000); // the tick of 10:00:01
    await eventually(() => lines(file).length === 1, 10_000, 'the first tick running');
    clock.advance(1_000); // the tick of 10:00:02, while the first still runs
    await eventually(() => logged.some((l) => l.includes('schedule tick not dispatched')), 10_000, 'the skipped tick logged');
    const line = JSON.parse(logged.find((l) => l.includes('schedule tick not dispatched'))!) as Record<string, string>;
    expect(line).to.include({ level: 'warn', event: 'every_second' });
    expect(line.error).to.equal('worker "ticker" is busy and its queue is full (0 waiting, its limit)');
    writeFileSync(path.join(dir, 'go'), ''); // the first tick may end now
    await eventually(() => lines(file).length === 2, 10_000, 'the first tick done');
    clock.advance(1_000); // the tick of 10:00:03
    await eventually(() => lines(file).length === 4, 10_000, 'the third tick done');
    const at = (s: number) => new Date(Date.UTC(2026, 0, 5, 10, 0, s)).toISOString();
    expect(lines(file)).to.deep.equal([`start ${at(1)}`, `end ${at(1)}`, `start ${at(3)}`, `end ${at(3)}`]);
  });

  it('changes wait for room instead: every change runs once, one at a time, in order', async () => {
    const file = path.join(dir, 'changes.log');
    const db = connect(couchUrl()).use(inbox);
    await db.bulk({ docs: [1, 2, 3, 4, 5].map((n) => ({ _id: `m${n}` })) });
    await eventually(() => lines(file).length === 10, 15_000, 'five changes run');
    const seen = lines(file);
    for (let i = 0; i < seen.length; i += 2) {
      expect(seen[i]!.replace('start ', ''), 'a run ends before the next starts').to.equal(seen[i + 1]!.replace('end ', ''));
    }
    expect(seen.filter((l) => l.startsWith('start')).map((l) => l.slice(6)).sort()).to.deep.equal(['m1', 'm2', 'm3', 'm4', 'm5']);
  });

  it('changes for a worker the runtime has not loaded yet wait for room too: none is recorded as refused and skipped', async () => {
    const db = `${prefix}late`;
    const file = path.join(dir, 'late.log');
    // The database does not exist yet: once it does, the trigger reads it from its start, so
    // all four changes come in one batch, to a worker nothing has loaded yet.
    await rt.db.events.insert({ _id: 'on_late', trigger: [{ changes: { db } }], workers: { late_reader: { file, ms: 50 } } } as never);
    await eventually(() => rt.changesTriggers!.stats().some((f) => f.event === 'on_late' && f.state === 'retrying'), 10_000, 'the trigger waiting for its database');
    await rt.db.workers.insert({ _id: 'late_reader', delegate: 'index.js', concurrency: 1, queue: 0, _attachments: { 'index.js': exclusive } } as never);
    await connect(couchUrl()).db.create(db);
    await connect(couchUrl()).use(db).bulk({ docs: [1, 2, 3, 4].map((n) => ({ _id: `l${n}` })) });
    await eventually(() => lines(file).length === 8, 15_000, 'four changes run');
    expect(lines(file).filter((l) => l.startsWith('start')).map((l) => l.slice(6)).sort()).to.deep.equal(['l1', 'l2', 'l3', 'l4']);
  });
});
