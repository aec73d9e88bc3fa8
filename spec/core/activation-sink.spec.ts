/** Where activation records go: a tee that isolates its sinks, and the scrub before storage. */
import { expect } from 'chai';
import type { ActivationRecord } from '../../src/activations/record.ts';
import { redactOutcome, redactingActivations, teeActivations, type ActivationSink } from '../../src/core/activation-sink.ts';
import { createLogger, kRedacted } from '../../src/shared/logger.ts';

const rec = (workers: ActivationRecord['workers']): ActivationRecord => ({ activation: 'a1', events: ['e'], trigger: 'http', started: 0, durationMs: 1, workers });

describe('activation sinks', () => {
  it('a sink that throws neither keeps the record from the others nor reaches Firing, and is logged', () => {
    const got: string[] = [];
    const lines: string[] = [];
    const broken: ActivationSink = { record() { throw new Error('full'); } };
    const tee = teeActivations([broken, { record: (r) => got.push(r.activation) }], createLogger({ level: 'error', format: 'json', write: (l) => lines.push(l) }));
    expect(() => tee.record(rec([]))).to.not.throw();
    expect(got).to.deep.equal(['a1']);
    expect(JSON.parse(lines[0]!)).to.include({ msg: 'an activation record was not taken', activation: 'a1', error: 'full' });
  });

  it('scrubs credentials from worker logs and errors before storing, leaving the original record (and clean ones) untouched', () => {
    const stored: ActivationRecord[] = [];
    const sink = redactingActivations({ record: (r) => stored.push(r) });
    const clean = { worker: 'ok', status: 'ok' as const, logs: [], durationMs: 1 };
    const dirty = {
      worker: 'leaky', status: 'error' as const, durationMs: 2,
      error: { code: 'LC_WORKER_ERROR', message: 'cannot reach http://admin:hunter2@db:5984', stack: 'Error: cannot reach http://admin:hunter2@db:5984\n    at connect (x.js:1:1)' },
      logs: [{ t: 1, level: 'info' as const, msg: 'plain line' }, { t: 2, level: 'error' as const, msg: 'Authorization: Basic YWRtaW46aHVudGVyMg==' }],
    };
    const original = rec([clean, dirty]);
    sink.record(original);
    const out = stored[0]!;
    expect(out.workers[0]).to.equal(clean);
    expect(out.workers[1]!.error!.message).to.equal(`cannot reach http://admin:${kRedacted}@db:5984`);
    expect(out.workers[1]!.error!.stack).to.equal(`Error: cannot reach http://admin:${kRedacted}@db:5984\n    at connect (x.js:1:1)`);
    expect(out.workers[1]!.logs.map((l) => l.msg)).to.deep.equal(['plain line', `Authorization: Basic ${kRedacted}`]);
    expect(original.workers[1]!.error!.message).to.contain('hunter2');
    // Nothing to scrub: the very same record goes through.
    const plain = rec([clean]);
    sink.record(plain);
    expect(stored[1]).to.equal(plain);
    expect(redactOutcome(clean)).to.equal(clean);
  });
});
