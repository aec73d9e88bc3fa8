import { expect } from 'chai';
import { SlotTable } from '../../src/shared/slots.ts';

describe('SlotTable: entries in flight under ids it hands out', () => {
  it('finds each entry by its id, counts them, and forgets a deleted one', () => {
    const t = new SlotTable<string>();
    const a = t.add('a');
    const b = t.add('b');
    expect(a).to.not.equal(b);
    expect(t.get(a)).to.equal('a');
    expect(t.get(b)).to.equal('b');
    expect(t.size).to.equal(2);
    expect(t.delete(a)).to.equal(true);
    expect(t.get(a)).to.equal(undefined);
    expect(t.delete(a)).to.equal(false);
    expect(t.size).to.equal(1);
    expect([...t.entries()]).to.deep.equal(['b']);
  });

  it('reuses slots, so a steady number held never grows it, and an old id never finds the newer entry in its slot', () => {
    const t = new SlotTable<number>();
    const held: number[] = [];
    const gone: number[] = [];
    for (let i = 0; i < 10_000; i++) {
      held.push(t.add(i));
      if (held.length > 3) { const id = held.shift()!; expect(t.delete(id)).to.equal(true); gone.push(id); }
    }
    expect(t.slots).to.equal(4);
    expect(t.size).to.equal(3);
    expect(new Set(gone).size).to.equal(gone.length); // no id handed out twice
    for (const id of gone) expect(t.get(id)).to.equal(undefined);
    expect(held.map((id) => t.get(id))).to.deep.equal([9_997, 9_998, 9_999]);
    for (const id of gone.slice(-10)) expect(t.delete(id)).to.equal(false);
    expect(t.size).to.equal(3);
  });

  it('finds nothing under ids it never gave: other numbers, NaN, negative, fractional', () => {
    const t = new SlotTable<string>();
    const id = t.add('x');
    for (const bad of [id + 1, id - 1, 0, Number.NaN, -1, 0.5, id + 0.5, id + 2 ** 22]) expect(t.get(bad)).to.equal(undefined);
    for (const bad of [Number.NaN, -1, 0.5, id + 2 ** 22]) expect(t.delete(bad)).to.equal(false);
    expect(t.get(id)).to.equal('x');
  });

  it('clear() forgets everything held and frees every slot', () => {
    const t = new SlotTable<string>();
    const ids = ['a', 'b', 'c'].map((v) => t.add(v));
    t.delete(ids[1]!);
    t.clear();
    expect(t.size).to.equal(0);
    for (const id of ids) expect(t.get(id)).to.equal(undefined);
    expect([...t.entries()]).to.deep.equal([]);
    for (const v of ['d', 'e', 'f']) t.add(v);
    expect(t.slots).to.equal(3);
    expect([...t.entries()].sort()).to.deep.equal(['d', 'e', 'f']);
  });
});
