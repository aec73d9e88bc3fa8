/**
 * The stored form of a batch: repeated columns through a string table, start times as
 * offsets, this runtime's activation ids as their counter. Decoding gives back exactly the
 * plain form, whatever the ids look like; a plain document passes through unchanged.
 */
import { expect } from 'chai';
import { BatchBuilder, decodeBatch, encodeBatch, expandBatch, type BatchDoc } from '../../src/activations/batch.ts';

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
    expect(stored.activation).to.deep.equal([...odd, 0, 36 ** 10 - 1, parseInt('az09', 36)]);
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
    expect(stored.v).to.equal(2);
    expect(stored.activation.slice(0, 3)).to.deep.equal([1000, 1001, 1002]);
    expect(stored.activation.slice(3)).to.deep.equal(['99999999-zzzz-1', 'plain', own(t + 7, 5) + '-x']);
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

  it('a plain document, written before the stored form existed, reads as it is', () => {
    const doc = plain(4);
    expect(decodeBatch(doc)).to.equal(doc);
    expect(expandBatch(doc)).to.have.length(4);
  });

  it('a busy batch is stored in well under half the bytes of its plain form', () => {
    const doc = plain(10_000);
    const plainBytes = JSON.stringify(doc).length;
    const storedBytes = JSON.stringify(encodeBatch(doc)).length;
    expect(storedBytes).to.be.below(plainBytes / 2);
    expect(decodeBatch(JSON.parse(JSON.stringify(encodeBatch(doc))))).to.deep.include({ activation: doc.activation, started: doc.started });
  });
});
