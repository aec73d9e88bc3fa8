/**
 * Packed integer columns: what activation batches store their columns as.
 */
import { expect } from 'chai';
import { packInts, unpackInts } from '../../src/activations/int-column.ts';

describe('a packed integer column', () => {
  it('writes a run of equal values once, and with differences a steady count as one run', () => {
    expect(packInts([5, 5, 5, 7], 4, false)).to.equal('5*3,7');
    expect(packInts([100, 101, 102, 110], 4, true)).to.equal('2s,1*2,8');
    expect(packInts(new Float64Array([-1, -1, 0]), 3, false)).to.equal('-1*2,0');
    expect(packInts([1, 2, 3], 0, true)).to.equal('');
    expect(packInts([1, 2, 3, 4], 2, false)).to.equal('1,2');
  });

  it('reads back every column it wrote: negative, large, out of order, with and without differences', () => {
    const columns = [
      [0], [7, 7, 7, 7, 7], [3, -4, 3, -4, 0, 0, 0, -1], [Number.MAX_SAFE_INTEGER, 0, -Number.MAX_SAFE_INTEGER],
      Array.from({ length: 5_000 }, (_, i) => Math.floor(i / 7) * 3 + (i % 11 === 0 ? -20 : 0)),
    ];
    for (const c of columns) {
      for (const delta of [false, true]) expect(unpackInts(packInts(c, c.length, delta), c.length, delta), `${delta} ${c.slice(0, 5)}`).to.deep.equal(c);
    }
  });

  it('a text that is not a packed column gives NaN where it cannot be read, and never more values than asked for', () => {
    expect(unpackInts('1,X,3', 3, false)).to.deep.equal([1, NaN, 3]);
    expect(unpackInts('1,-,3*0,4', 4, false)).to.deep.equal([1, NaN, NaN, 4]);
    expect(unpackInts('1*zzzzzzzz', 4, false)).to.deep.equal([1, 1, 1, 1]);
    expect(unpackInts('1', 3, true)).to.deep.equal([1, NaN, NaN]);
    expect(unpackInts(undefined, 2, false)).to.deep.equal([NaN, NaN]);
    expect(unpackInts([1, 2], 2, false)).to.deep.equal([NaN, NaN]);
  });
});
