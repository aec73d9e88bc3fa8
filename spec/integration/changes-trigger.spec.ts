import { expect } from 'chai';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect } from '../../src/store/couch.ts';
import { couchUrl, uniquePrefix } from '../support/couch.ts';
import { RecordingDispatcher } from '../support/recording-dispatcher.ts';
import { eventually, startRuntime } from '../support/runtime.ts';
import type { DispatchContext } from '../../src/workers/dispatcher.ts';
import type { WorkerOutcome } from '../../src/shared/message.ts';
import type { FeedStats } from '../../src/triggers/changes.ts';
import type { Runtime } from '../../src/runtime.ts';

const worker = { _id: 'w', delegate: 'i.js', _attachments: { 'i.js': { content_type: 'application/javascript', data: Buffer.from('1').toString('base64') } } };

/** Holds every message until the spec lets it go, so a spec sees what is in flight. */
class HeldDispatcher extends RecordingDispatcher {
  held: Array<() => void> = [];
  maxHeld = 0;
  override async dispatch(ctx: DispatchContext): Promise<WorkerOutcome> {
    await new Promise<void>((resolve) => { this.held.push(resolve); this.maxHeld = Math.max(this.maxHeld, this.held.length); });
    return super.dispatch(ctx);
  }
  releaseAll(): void { for (const r of this.held.splice(0)) r(); }
}

/** Deploys `worker` and an event `id` following `db`'s changes, and waits for its feed; the event's revision. */
async function follow(rt: Runtime, id: string, db: string): Promise<string> {
  await rt.db.workers.insert(worker);
  const res = await rt.db.events.insert({ _id: id, trigger: [{ changes: { db } }], workers: { w: {} } });
  await eventually(() => rt.changesTriggers!.feeds(id) === 1, 10_000, 'feed started');
  return res.rev;
}

async function feedsOf(rt: Runtime, event: string): Promise<FeedStats[]> {
  const status = await rt.firer.status();
  return (status.feeds as FeedStats[]).filter((f) => f.event === event);
}

describe('changes triggers', () => {
  const prefix = uniquePrefix();
  const inbox = `${prefix}inbox`;

  before(async () => {
    const nano = connect(couchUrl());
    await nano.db.create(inbox);
  });

  it('fires once per change with the change in the message, and a restart misses nothing (checkpoint in _local)', async () => {
    const rec1 = new RecordingDispatcher();
    const rt1 = await startRuntime({ config: { dbPrefix: prefix }, dispatchers: [rec1] });
    await rt1.db.workers.insert({ _id: 'w', delegate: 'i.js', _attachments: { 'i.js': { content_type: 'application/javascript', data: Buffer.from('1').toString('base64') } } });
    await rt1.db.events.insert({ _id: 'on_inbox', trigger: [{ changes: { db: inbox, include_docs: true } }], workers: { w: { from: 'changes' } } });
    await eventually(() => !!rt1.catalog.get('on_inbox'), 5_000, 'event loaded');
    // The trigger records its start position before it follows the feed, so a change from now on is seen.
    const inboxDb = connect(couchUrl()).use<Record<string, unknown>>(inbox);
    await eventually(() => rt1.changesTriggers!.feeds('on_inbox') === 1, 5_000, 'changes feed started');
    await inboxDb.insert({ _id: 'm1', text: 'one' });
    await eventually(() => rec1.messages.length >= 1, 10_000, 'm1 delivered');
    const m = rec1.messages[0]!;
    expect(m.trigger).to.equal('changes');
    expect(m.event).to.equal('on_inbox');
    expect((m.change as { id: string }).id).to.equal('m1');
    expect(m.parameters).to.include({ id: 'm1', db: inbox, from: 'changes' });
    expect((m.parameters.doc as { text: string }).text).to.equal('one');
    await rt1.stop();

    // Written while no runtime runs: delivered by the next one, from the checkpoint.
    await inboxDb.insert({ _id: 'm2', text: 'two' });
    await inboxDb.insert({ _id: 'm3', text: 'three' });
    const rec2 = new RecordingDispatcher();
    const rt2 = await startRuntime({ config: { dbPrefix: prefix }, dispatchers: [rec2] });
    try {
      await eventually(() => rec2.messages.length >= 2, 10_000, 'm2 and m3 delivered after the restart');
      const ids = rec2.messages.map((x) => (x.change as { id: string }).id);
      expect(ids).to.include.members(['m2', 'm3']);
      expect(ids).to.not.include('m1');
    } finally {
      await rt2.stop();
    }
  });

  it('a changes trigger on a database that does not exist yet starts once it does (retried, never given up)', async () => {
    const later = `${prefix}later`;
    const rec = new RecordingDispatcher();
    const rt = await startRuntime({ dispatchers: [rec] });
    try {
      await rt.db.workers.insert({ _id: 'w', delegate: 'i.js', _attachments: { 'i.js': { content_type: 'application/javascript', data: Buffer.from('1').toString('base64') } } });
      await rt.db.events.insert({ _id: 'on_later', trigger: [{ changes: { db: later } }], workers: { w: {} } });
      await eventually(() => !!rt.catalog.get('on_later'), 5_000, 'event loaded');
      expect(rt.changesTriggers!.feeds('on_later')).to.equal(0);
      const nano = connect(couchUrl());
      await nano.db.create(later);
      await eventually(() => rt.changesTriggers!.feeds('on_later') === 1, 10_000, 'feed started after the database appeared');
      await nano.use<Record<string, unknown>>(later).insert({ _id: 'x' });
      await eventually(() => rec.messages.length === 1, 10_000, 'change delivered');
      expect((rec.messages[0]!.change as { id: string }).id).to.equal('x');
    } finally {
      await rt.stop();
    }
  });

  it('a batch is fired at once up to the bound, and the checkpoint moves only once all of it finished', async () => {
    const db = `${prefix}bounded`;
    await connect(couchUrl()).db.create(db);
    const held = new HeldDispatcher();
    const rt = await startRuntime({ config: { changesConcurrency: 10 }, dispatchers: [held] });
    try {
      await follow(rt, 'bounded', db);
      const start = (await feedsOf(rt, 'bounded'))[0]!.checkpoint;
      await connect(couchUrl()).use(db).bulk({ docs: Array.from({ length: 25 }, (_, i) => ({ _id: `d${String(i).padStart(2, '0')}` })) });
      // the first answer may carry one change (a longpoll wakes on the first); the next ones a full batch
      let sawFullBatch = false;
      while (held.messages.length + held.held.length < 25) {
        await eventually(() => held.held.length > 0, 10_000, 'a batch in flight');
        await new Promise((r) => setTimeout(r, 100)); // however long it takes, no more than the bound
        if (held.held.length === 10) {
          sawFullBatch = true;
          const [feed] = await feedsOf(rt, 'bounded');
          // the batch in flight, plus what the store says is still waiting (CouchDB does; the embedded store does not)
          expect(feed!.lag).to.be.at.least(10);
          if (held.messages.length === 0) expect(feed!.checkpoint).to.equal(start);
        }
        const before = held.messages.length;
        held.releaseAll();
        await eventually(() => held.messages.length > before, 10_000, 'released batch finished');
      }
      expect(sawFullBatch).to.equal(true);
      await eventually(() => { held.releaseAll(); return held.messages.length === 25; }, 10_000, 'all 25 delivered');
      expect(held.maxHeld).to.equal(10);
      await eventually(async () => (await feedsOf(rt, 'bounded'))[0]!.checkpoint !== start, 5_000, 'checkpoint moved');
      expect(new Set(held.messages.map((m) => (m.change as { id: string }).id)).size).to.equal(25);
    } finally {
      held.releaseAll();
      await rt.stop();
    }
  });

  it('GET /_lively/status lists each changes trigger; editing the trigger restarts its feed, disabling or deleting stops it', async () => {
    const db = `${prefix}status`;
    await connect(couchUrl()).db.create(db);
    const rec = new RecordingDispatcher();
    const rt = await startRuntime({ dispatchers: [rec] });
    try {
      const rev = await follow(rt, 'watch', db);
      const [feed] = await feedsOf(rt, 'watch');
      expect(feed).to.include({ event: 'watch', db, state: 'running' });
      expect(feed!.checkpoint).to.be.a('string');
      expect(feed!.holder).to.be.a('string');
      // edited: only documents of kind "job" now, and the feed follows the new definition
      const edited = await rt.db.events.insert({ _id: 'watch', _rev: rev, trigger: [{ changes: { db, selector: { kind: 'job' } } }], workers: { w: {} } });
      await new Promise((r) => setTimeout(r, 300));
      await eventually(() => rt.changesTriggers!.feeds('watch') === 1, 10_000, 'feed restarted');
      await connect(couchUrl()).use<Record<string, unknown>>(db).bulk({ docs: [{ _id: 'other', kind: 'x' }, { _id: 'job1', kind: 'job' }] });
      await eventually(() => rec.messages.length >= 1, 10_000, 'job delivered');
      await new Promise((r) => setTimeout(r, 200));
      expect(rec.messages.map((m) => (m.change as { id: string }).id)).to.deep.equal(['job1']);
      const disabled = await rt.db.events.insert({ _id: 'watch', _rev: edited.rev, disabled: true, trigger: [{ changes: { db } }], workers: { w: {} } });
      await eventually(async () => (await feedsOf(rt, 'watch')).length === 0, 10_000, 'feed stopped when disabled');
      const enabled = await rt.db.events.insert({ _id: 'watch', _rev: disabled.rev, trigger: [{ changes: { db } }], workers: { w: {} } });
      await eventually(() => rt.changesTriggers!.feeds('watch') === 1, 10_000, 'feed started again');
      await rt.db.events.destroy('watch', enabled.rev);
      await eventually(async () => (await feedsOf(rt, 'watch')).length === 0, 10_000, 'feed stopped when deleted');
    } finally {
      await rt.stop();
    }
  });

  it('a database deleted under its trigger shows as retrying with the error, and once created again all its changes are delivered', async () => {
    const db = `${prefix}deleted`;
    const nano = connect(couchUrl());
    await nano.db.create(db);
    const rec = new RecordingDispatcher();
    const rt = await startRuntime({ config: { leaseMs: 1_000 }, dispatchers: [rec] });
    try {
      await follow(rt, 'on_deleted', db);
      await nano.use(db).insert({ _id: 'old' } as never);
      await eventually(() => rec.messages.length === 1, 10_000, 'old delivered');
      await nano.db.destroy(db);
      // the feed may first see its poll cut; then the store says the database is gone
      await eventually(async () => {
        const [f] = await feedsOf(rt, 'on_deleted');
        return f?.state === 'retrying' && /404/.test(f.lastError ?? '');
      }, 10_000, 'retrying in status, with the 404');
      // created again and written to at once: every change of the new database is new
      await nano.db.create(db);
      await nano.use(db).bulk({ docs: [{ _id: 'new1' }, { _id: 'new2' }] });
      await eventually(() => rec.messages.length === 3, 20_000, 'the new database followed from its start');
      expect(rec.messages.map((m) => (m.change as { id: string }).id).slice(1).sort()).to.deep.equal(['new1', 'new2']);
      await eventually(async () => (await feedsOf(rt, 'on_deleted'))[0]?.state === 'running', 10_000, 'running again');
    } finally {
      await rt.stop();
    }
  });

  it('two runtimes on one store: one follows the feed, the other stands by and takes over from the checkpoint when the first stops', async () => {
    const db = `${prefix}shared`;
    const p2 = uniquePrefix();
    await connect(couchUrl()).db.create(db);
    const recA = new RecordingDispatcher();
    const recB = new RecordingDispatcher();
    const a = await startRuntime({ config: { dbPrefix: p2, leaseMs: 300 }, dispatchers: [recA] });
    const b = await startRuntime({ config: { dbPrefix: p2, leaseMs: 300 }, dispatchers: [recB] });
    try {
      await a.db.workers.insert(worker);
      await a.db.events.insert({ _id: 'shared', trigger: [{ changes: { db } }], workers: { w: {} } });
      await eventually(() => a.changesTriggers!.feeds('shared') + b.changesTriggers!.feeds('shared') === 1, 10_000, 'one follower');
      const [first, second, firstRec, secondRec] = a.changesTriggers!.feeds('shared') === 1 ? [a, b, recA, recB] : [b, a, recB, recA];
      expect((await feedsOf(second, 'shared'))[0]!.state).to.equal('standby');
      const inbox = connect(couchUrl()).use(db);
      await inbox.bulk({ docs: Array.from({ length: 20 }, (_, i) => ({ _id: `m${i}` })) });
      await eventually(() => firstRec.messages.length === 20, 10_000, 'first delivers');
      await new Promise((r) => setTimeout(r, 700)); // two lease periods: the one standing by stays put
      expect(secondRec.messages).to.have.length(0);
      await first.stop();
      await inbox.bulk({ docs: Array.from({ length: 5 }, (_, i) => ({ _id: `n${i}` })) });
      await eventually(() => secondRec.messages.length === 5, 10_000, 'second takes over');
      expect(secondRec.messages.map((m) => (m.change as { id: string }).id).sort()).to.deep.equal(['n0', 'n1', 'n2', 'n3', 'n4']);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it('the tutorial: an inbox database, an event whose changes trigger runs a node worker per new message - 100 messages, 100 activations', async () => {
    const inboxDb = `${prefix}tutorial_inbox`;
    await connect(couchUrl()).db.create(inboxDb);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lively-tutorial-'));
    const file = path.join(dir, 'handled.txt');
    const rt = await startRuntime(); // the real thread dispatcher runs the worker
    try {
      await rt.db.workers.insert({ _id: 'handle_message', type: 'node', delegate: 'index.js', _attachments: { 'index.js': { content_type: 'application/javascript', data: Buffer.from(`const fs = require('node:fs');
module.exports = async (msg) => {
  fs.appendFileSync(msg.arguments.file, msg.parameters.id + ' ' + msg.parameters.doc.subject + '\\n');
  return { handled: msg.parameters.id };
};`).toString('base64') } } });
      await rt.db.events.insert({ _id: 'new_message', trigger: { changes: { db: inboxDb, include_docs: true } }, workers: { handle_message: { file } } });
      await eventually(() => rt.changesTriggers!.feeds('new_message') === 1, 10_000, 'feed started');
      const before = rt.firing.completed;
      const inbox = connect(couchUrl()).use<Record<string, unknown>>(inboxDb);
      for (let i = 0; i < 100; i++) await inbox.insert({ _id: `msg${i}`, subject: `hello ${i}` });
      const handled = () => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);
      await eventually(() => handled().length >= 100, 20_000, '100 messages handled');
      await eventually(() => rt.firing.completed - before === 100, 5_000, '100 activations completed');
      const lines = handled();
      expect(lines).to.have.length(100);
      expect(new Set(lines).size).to.equal(100);
      expect(lines).to.include('msg42 hello 42');
      expect(rt.firing.outcomes.error).to.equal(0);
    } finally {
      await rt.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
