import { expect } from 'chai';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { idOf, installReadAhead, readAheadStats } from '../../src/store/embedded/read-ahead.ts';

const require = createRequire(import.meta.url);

interface Down {
  open(cb: (err?: Error) => void): void;
  close(cb: (err?: Error) => void): void;
  put(key: string, value: string, cb: (err?: Error) => void): void;
  batch(ops: Array<{ type: 'put' | 'del'; key: string; value?: string }>, cb: (err?: Error) => void): void;
  get(key: string, options: { asBuffer: boolean }, cb: (err: Error | null, value?: string | Buffer) => void): void;
  iterator(options: Record<string, unknown>): { next(cb: (err: Error | null, key?: Buffer, value?: string) => void): void; end(cb: (err?: Error) => void): void };
}

const doc = (id: string) => `\xffdocument-store\xff${id}`;
const seq = (n: number) => `\xffby-sequence\xff${String(n).padStart(16, '0')}`;

describe('embedded store: read-ahead of document metadata under _changes (real LevelDB)', () => {
  let dir: string;
  let db: Down;
  const call = <T>(fn: (cb: (err: Error | null | undefined, v?: T) => void) => void) =>
    new Promise<T>((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))));
  const get = (key: string, asBuffer = false) => call<string | Buffer>((cb) => db.get(key, { asBuffer }, cb));
  /** Reads the by-sequence entries in order and, for each, its document's metadata, one get after another (as PouchDB does). */
  async function changes(onEach?: (i: number) => Promise<void>): Promise<string[]> {
    const it = db.iterator({ gt: seq(0), lt: '\xffby-sequence\xff\xff', keyAsBuffer: true, valueAsBuffer: false });
    const out: string[] = [];
    for (let i = 0; ; i++) {
      const [key, value] = await new Promise<[Buffer | undefined, string | undefined]>((resolve, reject) => it.next((err, k, v) => (err ? reject(err) : resolve([k, v]))));
      if (key === undefined) break;
      if (onEach) await onEach(i);
      out.push(String(await get(doc(JSON.parse(value!)._id))));
    }
    await call((cb) => it.end(cb));
    return out;
  }

  before(async () => {
    const LevelDOWN = require('leveldown') as ((location: string) => Down) & { prototype: object };
    expect(installReadAhead(LevelDOWN)).to.equal(true);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-read-ahead-'));
    db = LevelDOWN(dir);
    await call((cb) => db.open(cb));
    const ops: Array<{ type: 'put'; key: string; value: string }> = [];
    for (let i = 1; i <= 300; i++) {
      ops.push({ type: 'put', key: seq(i), value: JSON.stringify({ n: i, _id: `d${i}`, _rev: `1-${i}` }) });
      ops.push({ type: 'put', key: doc(`d${i}`), value: JSON.stringify({ id: `d${i}`, seq: i, v: 'first' }) });
    }
    await call((cb) => db.batch(ops, cb));
  });
  after(async () => {
    await call((cb) => db.close(cb));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reading a by-sequence store change by change - each get answers what LevelDB holds, most of them from one getMany', async () => {
    const before = readAheadStats();
    const out = await changes();
    expect(out).to.have.lengthOf(300);
    out.forEach((v, i) => expect(JSON.parse(v)).to.deep.equal({ id: `d${i + 1}`, seq: i + 1, v: 'first' }));
    const after = readAheadStats();
    expect(after.read_ahead_served - before.read_ahead_served).to.be.greaterThan(250);
    expect(after.read_ahead_batches - before.read_ahead_batches).to.be.lessThan(30);
  });

  it('a write between the read-ahead and the get - the get sees the write (what was read ahead is dropped)', async () => {
    const out = await changes(async (i) => {
      if (i === 5) await call((cb) => db.put(doc('d40'), JSON.stringify({ id: 'd40', seq: 40, v: 'second' }), cb));
      if (i === 6) await call((cb) => db.batch([{ type: 'put', key: doc('d41'), value: JSON.stringify({ id: 'd41', v: 'batched' }) }], cb));
    });
    expect(JSON.parse(out[39]!)).to.deep.equal({ id: 'd40', seq: 40, v: 'second' });
    expect(JSON.parse(out[40]!)).to.deep.equal({ id: 'd41', v: 'batched' });
    expect(JSON.parse(out[41]!).v).to.equal('first');
  });

  it('gets asked for in one turn - text answered together, a missing key as NotFound; bytes read on their own, byte for byte', async () => {
    const bytes = Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1]);
    await call((cb) => (db as unknown as { put(k: string, v: Buffer, cb: (e?: Error) => void): void }).put('\xffbinary\xffx', bytes, cb));
    const before = readAheadStats().gets_together;
    const results = await Promise.allSettled([get(doc('d1')), get(doc('missing')), get('\xffbinary\xffx', true), get(doc('d2'))]);
    expect(JSON.parse(String((results[0] as PromiseFulfilledResult<string>).value)).id).to.equal('d1');
    expect(results[1]!.status).to.equal('rejected');
    expect(String((results[1] as PromiseRejectedResult).reason)).to.match(/notfound/i);
    const buf = (results[2] as PromiseFulfilledResult<Buffer>).value;
    expect(Buffer.isBuffer(buf) && buf.equals(bytes)).to.equal(true);
    expect(JSON.parse(String((results[3] as PromiseFulfilledResult<string>).value)).id).to.equal('d2');
    expect(readAheadStats().gets_together - before).to.equal(3);
  });

  it('gets and a close in one turn - the gets are answered "Database is not open", and LevelDB is not read after its close', async () => {
    const LevelDOWN = require('leveldown') as (location: string) => Down;
    const other = LevelDOWN(fs.mkdtempSync(path.join(os.tmpdir(), 'lc-read-ahead-close-')));
    await call((cb) => other.open(cb));
    await call((cb) => other.batch([{ type: 'put', key: doc('a'), value: '{"id":"a"}' }, { type: 'put', key: doc('b'), value: '{"id":"b"}' }], cb));
    const asked = [doc('a'), doc('b')].map((k) => new Promise<string>((resolve) => other.get(k, { asBuffer: false }, (err, v) => resolve(err ? String(err.message) : String(v)))));
    const closed = call((cb) => other.close(cb));
    expect(await Promise.all(asked)).to.deep.equal(['Database is not open', 'Database is not open']);
    await closed;
    fs.rmSync((other as unknown as { location: string }).location, { recursive: true, force: true });
  });

  it('an iterator that ends early - what it read ahead and nobody asked for is dropped', async () => {
    const it = db.iterator({ gt: seq(0), lt: '\xffby-sequence\xff\xff', keyAsBuffer: true, valueAsBuffer: false });
    await new Promise<void>((resolve, reject) => it.next((err) => (err ? reject(err) : resolve())));
    await call((cb) => it.end(cb));
    // a write after the end, then a get: LevelDB's answer, not a stale one
    await call((cb) => db.put(doc('d3'), JSON.stringify({ id: 'd3', v: 'after end' }), cb));
    expect(JSON.parse(String(await get(doc('d3')))).v).to.equal('after end');
  });

  it('idOf - the _id of a by-sequence entry, read without parsing where PouchDB put it (after the fields), parsed otherwise', () => {
    expect(idOf('{"z":1,"nested":{"_id":"x"},"_id":"a","_rev":"1-4a7f"}')).to.equal('a');
    expect(idOf('{"_id":"a","x":1}')).to.equal('a');
    expect(idOf(Buffer.from('{"x":1,"_id":"é/ü","_rev":"1-a"}'))).to.equal('é/ü');
    expect(idOf('{"x":1,"_id":"q\\"uote","_rev":"1-a"}')).to.equal('q"uote');
    expect(idOf('not json')).to.equal(undefined);
    expect(idOf('{"x":1}')).to.equal(undefined);
  });
});
