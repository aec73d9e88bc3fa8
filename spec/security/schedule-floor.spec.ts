/**
 * Hole 6 of the security review, its validation part: a schedule of `"every": "1ms"` flooded
 * the store. An interval under 1 s is refused by validate_doc_update in the store and, for a
 * document written before validation was installed, by the runtime when it loads events; both
 * name the field.
 */
import { expect } from 'chai';
import { parseEventDoc } from '../../src/events/parse.ts';
import { initStore } from '../../src/store/init.ts';
import { connect } from '../../src/store/couch.ts';
import { couchUrl, dropPrefix, uniquePrefix } from '../support/couch.ts';
import { eventually, startRuntime } from '../support/runtime.ts';

describe('security: a schedule runs at most once a second', function () {
  this.timeout(30_000);
  const prefix = uniquePrefix();
  after(() => dropPrefix(prefix));

  it('the store refuses "every" under 1 s: 403 naming trigger.schedule.every', async () => {
    const server = connect(couchUrl());
    await initStore(server, { prefix });
    const events = server.use(`${prefix}events`);
    for (const every of ['1ms', 999, '0.5s']) {
      const err = await events.insert({ _id: 'flood', trigger: { schedule: { every } }, workers: { w: {} } } as never).then(() => undefined, (e) => e);
      expect(err?.statusCode, String(every)).to.equal(403);
      expect(String(err.reason ?? err.message)).to.equal(`trigger.schedule.every: must be at least 1 s (1000 ms or "1s"), got ${JSON.stringify(every)}`);
    }
    expect((await events.insert({ _id: 'second', trigger: { schedule: { every: '1s' } }, workers: { w: {} } } as never)).ok).to.equal(true);
  });

  it('the runtime refuses one written before validation existed, lists it as invalid, and schedules nothing for it', async () => {
    const result = parseEventDoc({ _id: 'flood', trigger: [{ schedule: { every: '1ms' } }], workers: { w: {} } });
    expect(result).to.deep.include({ ok: false, reason: 'trigger[0].schedule.every: must be at least 1 s (1000 ms or "1s"), got "1ms"' });
    const p2 = `${prefix}old_`;
    // an events database without the validation document, as before `init`
    const server = connect(couchUrl());
    await server.db.create(`${p2}events`);
    await server.use(`${p2}events`).insert({ _id: 'flood', trigger: { schedule: { every: '1ms' } }, workers: { w: {} } } as never);
    const ddocFree = await server.use(`${p2}events`).get('flood');
    expect(ddocFree).to.have.property('_id', 'flood');
    const rt = await startRuntime({ config: { dbPrefix: p2 } });
    try {
      await eventually(() => rt.catalog.invalid().some((e) => e.id === 'flood'), 5_000, 'the event listed as invalid');
      expect(rt.catalog.invalid()).to.deep.include({ id: 'flood', reason: 'trigger.schedule.every: must be at least 1 s (1000 ms or "1s"), got "1ms"' });
      expect(rt.catalog.get('flood')).to.equal(undefined);
    } finally {
      await rt.stop();
      await dropPrefix(p2);
    }
  });
});
