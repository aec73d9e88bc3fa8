import { expect } from 'chai';
import { connect } from '../../src/store/couch.ts';
import { couchUrl, uniquePrefix } from '../support/couch.ts';
import { RecordingDispatcher } from '../support/recording-dispatcher.ts';
import { eventually, startRuntime } from '../support/runtime.ts';

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
});
