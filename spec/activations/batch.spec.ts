/**
 * The stored form of a batch: repeated columns through a string table, start times as
 * offsets, this runtime's activation ids as their counter, every column packed into one string.
 * Decoding gives back exactly the plain form, whatever the ids look like; batches an earlier
 * version wrote (v2, and plain documents) read as they did.
 */
import { expect } from 'chai';
import { BatchBuilder, decodeBatch, encodeBatch, expandBatch, type BatchDoc } from '../../src/activations/batch.ts';
import { unpackInts } from '../../src/activations/int-column.ts';

const t = Date.UTC(2026, 10, 28, 9, 0, 0);
const own = (ms: number, n: number) => `1a2b3c4d-${ms.toString(36)}-${n.toString(36)}`;

function plain(n: number): BatchDoc {
  const doc: BatchDoc = {
    _id: 'b', type: 'activations', count: 0,
    activation: [], events: [], trigger: [], path: [], method: [], started: [], durationMs: [], workers: [], parent: [],
    details: {}, inputs: {}, marks: {},
  };
  for (let i = 0; i < n; i++) {
    const s = t + i;
    doc.activation.push(own(s, 1000 + i));
    doc.events.push('bench_thread');
    doc.trigger.push('http');
    doc.path.push('/bench/thread');
    doc.method.push('GET');
    doc.started.push(s);
    doc.durationMs.push(0.25);
    doc.workers.push('trivial:ok');
    doc.parent!.push(null);
    doc.count++;
  }
  return doc;
}

describe('the stored form of an activation batch', () => {
  it('keeps as a string every id of this runtime whose counter would not read back the same', () => {
    const head = own(t, 0).slice(0, -1);
    const odd = [`${head}01`, `${head}A`, `${head}`, `${head}1-2`, `${head}${'z'.repeat(11)}`, `${head}é`];
    const fine = [`${head}0`, `${head}${'z'.repeat(10)}`, `${head}az09`];
    const doc = plain(0);
    for (const id of [...odd, ...fine]) {
      doc.activation.push(id);
      for (const k of ['events', 'trigger', 'path', 'method', 'workers'] as const) (doc[k] as Array<string | null>).push(null);
      doc.started.push(t);
      doc.durationMs.push(0);
      doc.parent!.push(null);
      doc.count++;
    }
    const stored = JSON.parse(JSON.stringify(encodeBatch(doc)));
    expect(stored.odd).to.deep.equal(Object.fromEntries(odd.map((id, i) => [String(i), id])));
    expect(unpackInts(stored.activation, 9, true).slice(6)).to.deep.equal([0, 36 ** 10 - 1, parseInt('az09', 36)]);
    expect(decodeBatch(stored).activation).to.deep.equal(doc.activation);
  });

  it('round-trips every column, including ids of another runtime, ids of no known shape, nulls and several events', () => {
    const doc = plain(3);
    // a durable activation recovered from another runtime keeps its own id; a hand-made one has no dashes
    doc.activation.push('99999999-zzzz-1', 'plain', own(t + 7, 5) + '-x');
    doc.events.push('a,b', 'c', 'd');
    doc.trigger.push('event', 'changes', 'schedule');
    doc.path.push(null, '/x/_changes', null);
    doc.method.push(null, 'POST', null);
    doc.started.push(t - 50, t + 3, t + 7);
    doc.durationMs.push(1, 2, 3);
    doc.workers.push('w:error*3', '', 'w:ok,v:timeout');
    doc.parent!.push(own(t, 1000), null, 'someone');
    doc.count += 3;
    doc.marks = { plain: { dead: true } };
    const stored = JSON.parse(JSON.stringify(encodeBatch(doc)));
    expect(stored.v).to.equal(3);
    expect(unpackInts(stored.activation, 6, true).slice(0, 3)).to.deep.equal([1000, 1001, 1002]);
    expect(stored.odd).to.deep.equal({ 3: '99999999-zzzz-1', 4: 'plain', 5: own(t + 7, 5) + '-x' });
    const back = decodeBatch(stored);
    for (const k of ['activation', 'events', 'trigger', 'path', 'method', 'started', 'durationMs', 'workers', 'parent'] as const) {
      expect(back[k], k).to.deep.equal(doc[k]);
    }
    expect(back.marks).to.deep.equal({ plain: { dead: true } });
    expect(expandBatch(stored).map((r) => r.activation)).to.deep.equal(doc.activation);
  });

  it('built record by record, past the growth of its columns, it reads back as the plain form of the same records', () => {
    const doc = plain(0);
    const built = new BatchBuilder();
    for (let i = 0; i < 1_000; i++) {
      const s = t + (i % 7) * 3 - 5;
      const id = i % 97 === 0 ? `other-${i}` : own(s, i);
      const cols = { events: i % 5 === 0 ? 'a,b' : 'bench_thread', trigger: i % 3 === 0 ? 'changes' : 'http', path: i % 3 === 0 ? null : `/orders/${i % 11}`,
        method: i % 3 === 0 ? null : 'POST', workers: i % 13 === 0 ? 'w:error*2' : 'w:ok', parent: i % 17 === 0 ? own(t, i - 1) : null };
      const ms = (i % 9) / 4;
      built.add(id, cols.events, cols.trigger, cols.path, cols.method, s, ms, cols.workers, cols.parent);
      doc.activation.push(id); doc.events.push(cols.events); doc.trigger.push(cols.trigger as 'http'); doc.path.push(cols.path); doc.method.push(cols.method);
      doc.started.push(s); doc.durationMs.push(ms); doc.workers.push(cols.workers); doc.parent!.push(cols.parent); doc.count++;
    }
    built.details[doc.activation[13]!] = [{ worker: 'w', status: 'error', logs: [], durationMs: 1, error: { code: 'E', message: 'm' } }];
    built.marks[doc.activation[13]!] = { dead: true };
    const stored = JSON.parse(JSON.stringify(built.stored('b')));
    expect(stored.count).to.equal(1_000);
    // each distinct string once
    const distinct = new Set([...doc.events, ...doc.trigger, ...doc.path, ...doc.method, ...doc.workers, ...doc.parent!].filter((x) => x !== null));
    expect(stored.strings).to.have.length(distinct.size);
    const back = decodeBatch(stored);
    for (const k of ['activation', 'events', 'trigger', 'path', 'method', 'started', 'durationMs', 'workers', 'parent'] as const) {
      expect(back[k], k).to.deep.equal(doc[k]);
    }
    expect(back.details).to.have.keys(doc.activation[13]!);
    expect(back.marks).to.deep.equal({ [doc.activation[13]!]: { dead: true } });
    expect(back.inputs).to.equal(undefined);
  });

  it('keeps durations to a hundredth of a ms, and one that is not a number as 0', () => {
    const built = new BatchBuilder();
    [1.234, 0.005, 12_345_678.9, Number.NaN, Infinity, -0.5].forEach((ms, i) => built.add(own(t, i), 'e', 'http', null, null, t, ms, 'w:ok', null));
    const back = decodeBatch(JSON.parse(JSON.stringify(built.stored('b'))));
    expect(back.durationMs).to.deep.equal([1.23, 0.01, 12_345_678.9, 0, 0, -0.5]);
  });

  it('a batch an earlier version stored with its columns as arrays (v2) reads as it did', () => {
    const v2 = {
      _id: 'b', type: 'activations', v: 2, count: 3, boot: '1a2b3c4d', strings: ['bench_thread', 'http', '/bench/thread', 'GET', 'trivial:ok', 'w:error*2'],
      activation: [1000, 'plain', 1002], events: [0, 0, 0], trigger: [1, 1, 1], path: [2, -1, 2], method: [3, -1, 3],
      t0: t, started: [0, 5, 9], durationMs: [0.25, 1, 12.5], workers: [4, 5, 4], parent: [-1, -1, -1], details: {}, marks: { plain: { dead: true } },
    };
    const back = decodeBatch(v2 as never);
    expect(back.activation).to.deep.equal([own(t, 1000), 'plain', own(t + 9, 1002)]);
    expect(back.path).to.deep.equal(['/bench/thread', null, '/bench/thread']);
    expect(back.started).to.deep.equal([t, t + 5, t + 9]);
    expect(back.durationMs).to.deep.equal([0.25, 1, 12.5]);
    expect(back.workers).to.deep.equal(['trivial:ok', 'w:error*2', 'trivial:ok']);
    expect(expandBatch(v2 as never)[1]).to.include({ activation: 'plain', dead: true });
  });

  it('a plain document, written before the stored form existed, reads as it is', () => {
    const doc = plain(4);
    expect(decodeBatch(doc)).to.equal(doc);
    expect(expandBatch(doc)).to.have.length(4);
  });

  it('a busy batch is stored as a dozen strings, in under a tenth of the bytes of its plain form', () => {
    const doc = plain(10_000);
    // as on a busy runtime: durations that differ, records that finish out of the order they started in
    doc.durationMs = doc.durationMs.map((_, i) => ((i * 7919) % 400) / 100);
    for (let i = 0; i + 1 < doc.count; i += 5) {
      [doc.activation[i], doc.activation[i + 1]] = [doc.activation[i + 1]!, doc.activation[i]!];
      [doc.started[i], doc.started[i + 1]] = [doc.started[i + 1]!, doc.started[i]!];
    }
    const plainBytes = JSON.stringify(doc).length;
    const stored = encodeBatch(doc);
    const storedBytes = JSON.stringify(stored).length;
    expect(storedBytes).to.be.below(plainBytes / 10);
    for (const k of ['activation', 'events', 'trigger', 'path', 'method', 'started', 'duration', 'workers', 'parent'] as const) expect(stored[k], k).to.be.a('string');
    expect(decodeBatch(JSON.parse(JSON.stringify(stored)))).to.deep.include({ activation: doc.activation, started: doc.started, durationMs: doc.durationMs });
    expect(decodeBatch(JSON.parse(JSON.stringify(encodeBatch(doc))))).to.deep.include({ activation: doc.activation, started: doc.started });
  });
});
