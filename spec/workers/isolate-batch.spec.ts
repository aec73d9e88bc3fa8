/**
 * An isolate worker's messages of one turn go into its isolate in one call and come back as
 * they finish. What must hold: every answer reaches its own message (never another's), a
 * message that throws fails alone, and an isolate that stops mid-batch fails exactly the
 * messages still running, with the reason.
 */
import { expect } from 'chai';
import { IsolateDispatcher } from '../../src/workers/dispatch/isolate.ts';
import type { WorkerSpec } from '../../src/workers/revision.ts';
import { collectEmits, message, workerSpec } from '../fixtures/workers/process/specs.ts';

function sourceSpec(id: string, code: string, limits: Partial<WorkerSpec['limits']> = {}): WorkerSpec {
  const base = workerSpec('isolate', 'echo.js');
  return { ...base, id, delegate: 'main.js', limits: { ...base.limits, ...limits }, attachments: { 'main.js': { contentType: 'text/javascript', data: Buffer.from(code) } } };
}

/** A worker that loops for ever when asked to (`spin`), else answers its `n`. */
const kSpinner = `module.exports = (msg) => {
  if (msg.parameters.spin) for (;;) { /* never returns */ }
  return msg.parameters.n;
};`;

describe('IsolateDispatcher - a turn\'s messages in one call', () => {
  let d: IsolateDispatcher;
  beforeEach(() => { d = new IsolateDispatcher(); });
  afterEach(async () => { await d.close(1000); });
  const run = (spec: WorkerSpec, params: Record<string, unknown> = {}) => {
    const { emits, onEmit } = collectEmits();
    return d.dispatch({ spec, message: message(spec, params), onEmit }).then((o) => ({ ...o, emits }));
  };

  it('answers 200 messages sent at once, each with its own result, logs and emits', async () => {
    const spec = sourceSpec('w-many', `module.exports = async (msg, ctx) => {
  const n = msg.parameters.n;
  for (let i = 0; i < n % 7; i++) await null; // finish in a different order than sent
  ctx.log('n=' + n);
  ctx.emit('seen', { n });
  return { n, twice: n * 2 };
};`);
    await run(spec, { n: -1 }); // loaded before the burst
    const outcomes = await Promise.all(Array.from({ length: 200 }, (_, n) => run(spec, { n })));
    outcomes.forEach((o, n) => {
      expect(o.status, JSON.stringify(o.error)).to.equal('ok');
      expect(o.result).to.deep.equal({ n, twice: n * 2 });
      expect(o.logs.map((l) => l.msg)).to.deep.equal([`n=${n}`]);
      expect(o.emits).to.deep.equal([{ emit: 'seen', parameters: { n } }]);
    });
  });

  it('one message that throws fails alone; the others of its turn answer', async () => {
    const spec = sourceSpec('w-mixed', `module.exports = (msg) => {
  if (msg.parameters.n === 3) throw new TypeError('three is refused');
  return msg.parameters.n;
};`);
    const outcomes = await Promise.all(Array.from({ length: 6 }, (_, n) => run(spec, { n })));
    expect(outcomes.map((o) => o.status)).to.deep.equal(['ok', 'ok', 'ok', 'error', 'ok', 'ok']);
    expect(outcomes[3]!.error!.message).to.contain('three is refused');
    expect(outcomes[3]!.error!.stack).to.match(/^TypeError: three is refused/);
    expect(outcomes.filter((o) => o.status === 'ok').map((o) => o.result)).to.deep.equal([0, 1, 2, 4, 5]);
  });

  it('an isolate that runs out of memory mid-batch fails the messages it held, saying so, and the next message gets a fresh isolate', async () => {
    const spec = sourceSpec('w-hog', `const kept = [];
module.exports = async (msg) => {
  if (msg.parameters.hog) { for (;;) kept.push(new Array(100000).fill(msg.parameters.n)); }
  for (let i = 0; i < 1000; i++) await null;
  return msg.parameters.n;
};`, { memory: 16, timeout: 10_000 });
    await run(spec, { n: 0 });
    const outcomes = await Promise.all([run(spec, { n: 1 }), run(spec, { n: 2, hog: true }), run(spec, { n: 3 })]);
    for (const o of outcomes) {
      expect(o.status).to.equal('error');
      expect(o.error!.code).to.equal('LC_WORKER_MEMORY');
    }
    const next = await run(spec, { n: 4 });
    expect(next.status, JSON.stringify(next.error)).to.equal('ok');
    expect(next.result).to.equal(4);
  });

  it('a synchronous endless loop in a batch is stopped at its deadline; the messages sent with it fail, saying the isolate stopped', async () => {
    const spec = sourceSpec('w-spin', kSpinner, { timeout: 400 });
    await run(spec, { n: 0 });
    const [spun, other] = await Promise.all([run(spec, { n: 1, spin: true }), run(spec, { n: 2 })]);
    expect(spun.status).to.equal('timeout');
    expect(spun.error!.code).to.equal('LC_WORKER_TIMEOUT');
    expect(other.status).to.not.equal('ok');
    expect((await run(spec, { n: 3 })).result).to.equal(3);
  });

  it('a loop behind another message of its batch times out as well, not as stopped by the isolate the other one\'s deadline disposed', async () => {
    const spec = sourceSpec('w-spin-second', kSpinner, { timeout: 400 });
    await run(spec, { n: 0 });
    const [first, spun] = await Promise.all([run(spec, { n: 1 }), run(spec, { n: 2, spin: true })]);
    expect(spun.status, JSON.stringify(spun.error)).to.equal('timeout');
    expect(spun.error!.code).to.equal('LC_WORKER_TIMEOUT');
    expect(first.result, 'the first never answered: its answer waits for the batch').to.equal(undefined);
    expect((await run(spec, { n: 3 })).result).to.equal(3);
  });
});
