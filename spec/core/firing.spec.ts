/**
 * Firing on its own (no store, no server): what `fire` answers synchronously and what it
 * answers through a promise, and that each activation's record is taken once its workers
 * are done, before anyone waiting on `done` sees their outcomes.
 */
import { expect } from 'chai';
import { EventCatalog } from '../../src/core/event-catalog.ts';
import { Firing, type FireInput } from '../../src/core/firing.ts';
import { WorkerGate } from '../../src/workers/gate.ts';
import type { WorkerRegistry } from '../../src/workers/registry.ts';
import type { DispatchContext, Dispatcher } from '../../src/workers/dispatcher.ts';
import type { WorkerSpec } from '../../src/workers/revision.ts';
import type { WorkerOutcome } from '../../src/shared/message.ts';
import type { ActivationRecord } from '../../src/activations/record.ts';
import type { ActivationSink } from '../../src/core/activation-sink.ts';
import { LivelyError } from '../../src/shared/errors.ts';
import { silentLogger } from '../../src/shared/logger.ts';

function spec(id: string): WorkerSpec {
  return { id, rev: '1-a', type: 'test', isolation: 'thread', delegate: '', attachments: {}, arguments: {}, limits: { timeout: 1_000, concurrency: 10, idle: 1_000 }, env: {}, couch: false };
}

const dispatcher: Dispatcher = {
  name: 'answering',
  serves: () => true,
  dispatch: async (ctx: DispatchContext): Promise<WorkerOutcome> => ({ worker: ctx.spec.id, status: ctx.spec.id === 'bad' ? 'error' : 'ok', result: { path: ctx.message.path }, logs: [], durationMs: 0 }),
  retire: async () => undefined,
  stats: () => ({ name: 'answering', warm: 0, inFlight: 0 }),
  close: async () => undefined,
};

function setup(log: ActivationSink) {
  const catalog = new EventCatalog();
  catalog.apply([
    { id: 'one', doc: { _id: 'one', trigger: { '/one': {} }, workers: { a: {} } } },
    { id: 'two', doc: { _id: 'two', trigger: { '/two': {} }, workers: { a: {}, bad: {} } } },
    { id: 'private', doc: { _id: 'private', trigger: { '/private': {} }, auth: 'user', workers: { a: {} } } },
  ]);
  const specs = new Map([['a', spec('a')], ['bad', spec('bad')]]);
  const registry = { peek: (name: string) => specs.get(name) } as unknown as WorkerRegistry;
  const authorized: string[] = [];
  const firing = new Firing({
    catalog, registry, gate: new WorkerGate(100, 100), dispatchers: [dispatcher], log, logger: silentLogger, maxChainDepth: 5,
    authorize: async (event) => { authorized.push(event.id); },
  });
  return { firing, authorized };
}

const input = (path: string): FireInput => ({ trigger: 'http', method: 'GET', path, params: {}, request: { query: {}, headers: {}, body: undefined }, depth: 0 });

describe('Firing', () => {
  it('fires a public event synchronously and records it before its outcomes reach a waiter', async () => {
    const records: ActivationRecord[] = [];
    const { firing } = setup({ record: (r) => { records.push(r); } });
    const fired = firing.fire(input('/one'));
    expect(fired).not.to.be.instanceOf(Promise);
    const { activation, events, workers, done } = fired as Exclude<typeof fired, Promise<unknown>>;
    expect({ events, workers }).to.deep.equal({ events: ['one'], workers: ['a'] });
    const outcomes = await done;
    expect(outcomes.map((o) => [o.worker, o.status])).to.deep.equal([['a', 'ok']]);
    expect(records).to.have.length(1);
    expect(records[0]).to.deep.include({ activation, events: ['one'], trigger: 'http', path: '/one', method: 'GET', workers: outcomes });
    expect(records[0]).not.to.have.property('dead');
    expect(firing.completed).to.equal(1);
  });

  it('waits for every worker of an activation, in the order of the event', async () => {
    const records: ActivationRecord[] = [];
    const { firing } = setup({ record: (r) => { records.push(r); } });
    const fired = await firing.fire(input('/two'));
    const outcomes = await fired.done;
    expect(outcomes.map((o) => [o.worker, o.status])).to.deep.equal([['a', 'ok'], ['bad', 'error']]);
    expect(records.map((r) => r.workers)).to.deep.equal([outcomes]);
    expect(firing.outcomes).to.deep.include({ ok: 1, error: 1 });
  });

  it('throws a refusal synchronously for an event that needs no authorising', () => {
    const { firing } = setup({ record: () => undefined });
    expect(() => firing.fire(input('/nothing'))).to.throw(LivelyError).with.property('code', 'LC_NO_EVENT');
  });

  it('authorises an event that is not public before it starts, through a promise', async () => {
    const { firing, authorized } = setup({ record: () => undefined });
    const fired = firing.fire(input('/private'));
    expect(fired).to.be.instanceOf(Promise);
    expect(authorized).to.deep.equal(['private']);
    expect((await (await fired).done).map((o) => o.status)).to.deep.equal(['ok']);
  });

  it('a sink that throws costs the record, not the outcomes', async () => {
    const { firing } = setup({ record: () => { throw new Error('disk full'); } });
    const fired = await firing.fire(input('/one'));
    expect((await fired.done).map((o) => o.status)).to.deep.equal(['ok']);
  });
  it('an event refused part-way (a later worker\'s queue is full) runs none of its workers and leaves every slot as it was', async () => {
    const catalog = new EventCatalog();
    catalog.apply([{ id: 'pair', doc: { _id: 'pair', trigger: { '/pair': {} }, workers: { a: {}, full: {} } } }]);
    const specs = new Map([['a', spec('a')], ['full', { ...spec('full'), limits: { timeout: 1_000, concurrency: 1, idle: 1_000 } }]]);
    const registry = { peek: (name: string) => specs.get(name) } as unknown as WorkerRegistry;
    const seen: string[] = [];
    const counting: Dispatcher = { ...dispatcher, dispatch: (ctx) => { seen.push(ctx.spec.id); return dispatcher.dispatch(ctx); } };
    const gate = new WorkerGate(100, 0); // no message may wait
    const firing = new Firing({ catalog, registry, gate, dispatchers: [counting], log: { record: () => undefined }, logger: silentLogger, maxChainDepth: 5 });
    expect(gate.admit('full', 1)).to.equal(undefined); // the one slot of "full" is taken
    expect(() => firing.fire(input('/pair'))).to.throw(LivelyError).with.property('code', 'LC_QUEUE_FULL');
    await new Promise((r) => setImmediate(r));
    expect(seen).to.deep.equal([]);
    expect(gate.stats()).to.deep.equal({ queued: 0, busyWorkers: 1 }); // only the slot taken above
    gate.release('full', 1);
    const fired = firing.fire(input('/pair'));
    const outcomes = await (fired as Exclude<typeof fired, Promise<unknown>>).done;
    expect(outcomes.map((o) => o.status)).to.deep.equal(['ok', 'ok']);
    expect(seen).to.deep.equal(['a', 'full']);
    expect(gate.stats()).to.deep.equal({ queued: 0, busyWorkers: 0 });
  });
  /** Event "one" runs worker "a" (concurrency 1) through a dispatcher that holds each message until the spec lets it go. */
  function oneAtATime() {
    const catalog = new EventCatalog();
    catalog.apply([{ id: 'one', doc: { _id: 'one', trigger: { '/one': {} }, workers: { a: {} } } }]);
    const a = { ...spec('a'), limits: { timeout: 1_000, concurrency: 1, idle: 1_000 } };
    const registry = { peek: () => a } as unknown as WorkerRegistry;
    const running: Array<() => void> = [];
    const order: string[] = [];
    const holding: Dispatcher = { ...dispatcher, dispatch: (ctx) => new Promise((resolve) => {
      order.push(String(ctx.message.parameters.n));
      running.push(() => resolve({ worker: 'a', status: 'ok', result: { n: ctx.message.parameters.n }, logs: [], durationMs: 0 }));
    }) };
    const recorded: string[] = [];
    const gate = new WorkerGate(100, 100);
    const firing = new Firing({ catalog, registry, gate, dispatchers: [holding], log: { record: (r) => { recorded.push(r.activation); } }, logger: silentLogger, maxChainDepth: 5 });
    const fire = (n: number) => firing.fire({ ...input('/one'), params: { n } }) as Exclude<ReturnType<Firing['fire']>, Promise<unknown>>;
    return { firing, gate, running, order, recorded, fire };
  }

  it('triggers beyond a worker\'s concurrency wait, run one at a time in order, and each is recorded before its waiter sees it', async () => {
    const { firing, gate, running, order, recorded, fire } = oneAtATime();
    const fired = [1, 2, 3].map(fire);
    await new Promise((r) => setImmediate(r));
    expect(order).to.deep.equal(['1']);
    expect(firing.queued()).to.equal(2);
    // What the caller is told of a waiting trigger is what it is told of one that runs at once.
    for (const f of fired) {
      expect(f.activation).to.be.a('string');
      expect(f.events).to.deep.equal(['one']);
      expect(f.workers).to.deep.equal(['a']);
    }
    expect(new Set(fired.map((f) => f.activation)).size).to.equal(3);
    for (let i = 0; i < 3; i++) {
      running.shift()!();
      const outcomes = await fired[i]!.done;
      expect(outcomes.map((o) => o.result)).to.deep.equal([{ n: i + 1 }]);
      expect(recorded).to.include(fired[i]!.activation);
      await new Promise((r) => setImmediate(r));
    }
    expect(order).to.deep.equal(['1', '2', '3']);
    expect(gate.stats()).to.deep.equal({ queued: 0, busyWorkers: 0 });
  });

  it('a waiting trigger settles `done` whether it is asked for before its turn, after it, or never (it still runs and is recorded)', async () => {
    const { running, recorded, fire } = oneAtATime();
    const [first, before, never] = [1, 2, 3].map(fire);
    const early = before!.done; // asked for while it waits
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setImmediate(r));
      running.shift()!();
    }
    expect((await first!.done).map((o) => o.result)).to.deep.equal([{ n: 1 }]);
    expect((await early).map((o) => o.result)).to.deep.equal([{ n: 2 }]);
    expect(before!.done).to.equal(early);
    await new Promise((r) => setImmediate(r));
    expect(recorded).to.deep.equal([first!.activation, before!.activation, never!.activation]);
    expect((await never!.done).map((o) => o.result)).to.deep.equal([{ n: 3 }]); // asked for only after it ran
  });
});

describe('Firing - a worker emitting into a full queue', () => {
  it('logs the refusals once per path and window, then one line counting the rest, instead of a line per event', async () => {
    const catalog = new EventCatalog();
    catalog.apply([
      { id: 'start', doc: { _id: 'start', trigger: { '/start': {} }, workers: { emitter: {} } } },
      { id: 'pinged', doc: { _id: 'pinged', trigger: { '/emitter/ping': {} }, workers: { held: {} } } },
    ]);
    const held = { ...spec('held'), limits: { timeout: 1_000, concurrency: 1, queue: 0, idle: 1_000 } };
    const specs = new Map([['emitter', spec('emitter')], ['held', held]]);
    const release: Array<() => void> = [];
    const emitting: Dispatcher = { ...dispatcher, dispatch: (ctx) => new Promise((resolve) => {
      const done = () => resolve({ worker: ctx.spec.id, status: 'ok', logs: [], durationMs: 0 });
      if (ctx.spec.id === 'held') { release.push(done); return; }
      for (let i = 0; i < 50; i++) ctx.onEmit({ emit: 'ping', parameters: { i } });
      done();
    }) };
    const warnings: Array<[string, Record<string, unknown> | undefined]> = [];
    const logger = { ...silentLogger, warn: (msg: string, fields?: Record<string, unknown>) => { warnings.push([msg, fields]); } };
    const firing = new Firing({
      catalog, registry: { peek: (name: string) => specs.get(name) } as unknown as WorkerRegistry, gate: new WorkerGate(100, 100),
      dispatchers: [emitting], log: { record: () => undefined }, logger, maxChainDepth: 5, warnWindowMs: 50,
    });
    const fired = firing.fire(input('/start')) as Exclude<ReturnType<Firing['fire']>, Promise<unknown>>;
    await fired.done;
    expect(release).to.have.length(1); // the first ping runs; the other 49 find the queue full
    expect(warnings).to.have.length(1);
    expect(warnings[0]![0]).to.equal('internal event not dispatched');
    expect(warnings[0]![1]).to.include({ path: '/emitter/ping' });
    await new Promise((r) => setTimeout(r, 100));
    expect(warnings).to.have.length(2);
    expect(warnings[1]![0]).to.equal('internal event not dispatched: 48 more in the last 0.05 s');
    expect(warnings[1]![1]).to.include({ path: '/emitter/ping', more: 48 });
    release[0]!();
    firing.close();
  });
});

describe('Firing - a dispatcher that fails', () => {
  it('throwing at once or rejecting, it gives that worker a failed outcome, the activation its record, and frees the slot', async () => {
    const failing: Dispatcher = {
      ...dispatcher,
      dispatch: (ctx: DispatchContext): Promise<WorkerOutcome> => {
        if (ctx.spec.id === 'throws') throw new Error('dispatcher broke at once');
        if (ctx.spec.id === 'rejects') return Promise.reject(new Error('dispatcher broke later'));
        return dispatcher.dispatch(ctx);
      },
    };
    const catalog = new EventCatalog();
    catalog.apply([
      { id: 'e', doc: { _id: 'e', trigger: { '/e': {} }, workers: { throws: {}, rejects: {}, a: {} } } },
      { id: 'lone', doc: { _id: 'lone', trigger: { '/lone': {} }, workers: { rejects: {} } } },
    ]);
    const specs = new Map(['throws', 'rejects', 'a'].map((id) => [id, spec(id)]));
    const gate = new WorkerGate(100, 100);
    const records: ActivationRecord[] = [];
    const firing = new Firing({
      catalog, registry: { peek: (name: string) => specs.get(name) } as unknown as WorkerRegistry, gate,
      dispatchers: [failing], log: { record: (r) => { records.push(r); } }, logger: silentLogger, maxChainDepth: 5,
    });
    const several = firing.fire(input('/e')) as Exclude<ReturnType<Firing['fire']>, Promise<unknown>>;
    const alone = firing.fire(input('/lone')) as Exclude<ReturnType<Firing['fire']>, Promise<unknown>>;
    const outcomes = await several.done;
    expect(outcomes.map((o) => [o.worker, o.status, o.error?.message])).to.deep.equal([
      ['throws', 'error', 'dispatcher broke at once'], ['rejects', 'error', 'dispatcher broke later'], ['a', 'ok', undefined],
    ]);
    expect((await alone.done).map((o) => [o.worker, o.status, o.error?.code])).to.deep.equal([['rejects', 'error', 'LC_WORKER_ERROR']]);
    expect(records.map((r) => r.activation)).to.have.members([several.activation, alone.activation]);
    for (const id of ['throws', 'rejects', 'a']) expect(gate.lane(id), id).to.deep.equal({ running: 0, waiting: 0 });
    expect(firing.inFlight).to.equal(0);
  });
});
