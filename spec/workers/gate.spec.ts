import { expect } from 'chai';
import { WorkerGate } from '../../src/workers/gate.ts';
import { LivelyError } from '../../src/shared/errors.ts';

const tick = () => new Promise((r) => setImmediate(r));

describe('WorkerGate: admission in front of every dispatcher', () => {
  it('admits up to a worker\'s concurrency at once, then queues in order and admits one per release', async () => {
    const gate = new WorkerGate(100, 100);
    expect(gate.admit('w', 2)).to.equal(undefined);
    expect(gate.tryAdmit('w', 2)).to.equal(true);
    const order: string[] = [];
    void gate.admit('w', 2)!.then(() => order.push('first'));
    expect(gate.tryAdmit('w', 2)).to.equal(false);
    gate.queue('w', () => order.push('second'));
    void gate.admit('w', 2)!.then(() => order.push('third'));
    expect(gate.stats()).to.deep.equal({ queued: 3, busyWorkers: 1 });
    gate.release('w', 2);
    await tick();
    expect(order).to.deep.equal(['first']);
    gate.release('w', 2);
    gate.release('w', 2);
    await tick();
    expect(order).to.deep.equal(['first', 'second', 'third']);
    expect(gate.stats().queued).to.equal(0);
    // Five were admitted and three released: two still run.
    gate.release('w', 2);
    expect(gate.stats()).to.deep.equal({ queued: 0, busyWorkers: 1 });
    gate.release('w', 2);
    expect(gate.stats()).to.deep.equal({ queued: 0, busyWorkers: 0 });
  });

  it('a message arriving while others wait queues behind them even when a slot looks free', () => {
    const gate = new WorkerGate(100, 100);
    expect(gate.tryAdmit('w', 1)).to.equal(true);
    expect(gate.tryAdmit('w', 1)).to.equal(false);
    gate.queue('w', () => undefined);
    expect(gate.tryAdmit('w', 2)).to.equal(false); // a higher concurrency now does not jump the queue
  });

  it('refuses with LC_QUEUE_FULL past a worker\'s queue or the queue in all, and other workers are not affected', () => {
    const gate = new WorkerGate(3, 2);
    expect(gate.tryAdmit('a', 1)).to.equal(true);
    for (let i = 0; i < 2; i++) { expect(gate.tryAdmit('a', 1)).to.equal(false); gate.queue('a', () => undefined); }
    expect(() => gate.tryAdmit('a', 1)).to.throw(LivelyError).with.property('code', 'LC_QUEUE_FULL');
    expect(() => gate.admit('a', 1)).to.throw(LivelyError, /worker "a" is busy and its queue is full \(2 waiting, its limit\)/);
    expect(gate.tryAdmit('b', 1)).to.equal(true);
    expect(gate.tryAdmit('b', 1)).to.equal(false);
    gate.queue('b', () => undefined);
    expect(() => gate.tryAdmit('b', 1)).to.throw(LivelyError, /3 messages waiting in all/);
    expect(gate.stats().queued).to.equal(3);
  });

  it('a worker\'s own queue limit replaces the default for that worker only; 0 lets none wait', () => {
    const gate = new WorkerGate(100, 1);
    expect(gate.tryAdmit('long', 1, 3)).to.equal(true);
    for (let i = 0; i < 3; i++) { expect(gate.tryAdmit('long', 1, 3)).to.equal(false); gate.queue('long', () => undefined); }
    expect(() => gate.tryAdmit('long', 1, 3)).to.throw(LivelyError, /worker "long" is busy and its queue is full \(3 waiting/);
    expect(gate.tryAdmit('none', 1, 0)).to.equal(true);
    expect(() => gate.admit('none', 1, 0)).to.throw(LivelyError).with.property('code', 'LC_QUEUE_FULL');
    // The default still applies to a worker that names no limit.
    expect(gate.tryAdmit('plain', 1)).to.equal(true);
    expect(gate.tryAdmit('plain', 1)).to.equal(false);
    gate.queue('plain', () => undefined);
    expect(() => gate.tryAdmit('plain', 1)).to.throw(LivelyError, /worker "plain" is busy and its queue is full \(1 waiting/);
  });
});
