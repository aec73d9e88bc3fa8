import { expect } from 'chai';
import { orderedBulkDocsWrapper, readsOnce } from '../../src/store/embedded/bulk-order.ts';

/**
 * The embedded store's stand-in for pouchdb-bulkdocs-wrapper (src/store/embedded/bulk-order.ts):
 * rows in request order, and the checks of one write reading the same `allDocs` once.
 */
describe('embedded store: the checks of one _bulk_docs', () => {
  class FakeDb {
    reads: unknown[] = [];
    name = 'db';
    allDocs(opts?: unknown, callback?: (err: unknown, res?: unknown) => void): Promise<unknown> | undefined {
      this.reads.push(opts);
      const answer = { total_rows: 1, rows: [{ id: '_design/v', doc: { _id: '_design/v', validate_doc_update: 'function () {}' } }], asked: opts };
      if (typeof callback === 'function') { setImmediate(() => callback(null, answer)); return undefined; }
      return new Promise((r) => setImmediate(() => r(answer)));
    }
    type(): string { return this.name; }
  }

  it('allDocs asked with the same options is read once; each caller gets its own copy', async () => {
    const db = new FakeDb();
    const seen = readsOnce(db);
    const opts = { startkey: '_design/', endkey: '_design0', include_docs: true };
    const answers = await Promise.all(Array.from({ length: 25 }, () => seen.allDocs({ ...opts }) as Promise<{ rows: Array<{ doc: object }> }>));
    expect(db.reads).to.have.lengthOf(1);
    expect(answers[0]).to.deep.equal(answers[24]);
    expect(answers[0]).to.not.equal(answers[1]);
    expect(answers[0]!.rows[0]!.doc).to.not.equal(answers[1]!.rows[0]!.doc);
  });

  it('other options, a callback, and every other member go to the database itself', async () => {
    const db = new FakeDb();
    const seen = readsOnce(db);
    await seen.allDocs({ startkey: 'a' });
    await seen.allDocs({ startkey: 'b' });
    await new Promise((resolve) => seen.allDocs({ startkey: 'a' }, resolve));
    expect(db.reads).to.deep.equal([{ startkey: 'a' }, { startkey: 'b' }, { startkey: 'a' }]);
    expect(seen.type()).to.equal('db');
    expect(seen).to.be.instanceOf(FakeDb);
  });

  it('a write of several documents: each is checked against one read, refused ones keep their place', async () => {
    const db = new FakeDb();
    const args = { base: db, docs: [{ _id: 'a' }, { _id: 'b' }, { _id: 'c' }, { _id: 'd' }] };
    const handler = async (doc: { _id?: string }, a: { base?: object }) => {
      await (a.base as FakeDb).allDocs({ startkey: '_design/', endkey: '_design0', include_docs: true });
      if (doc._id === 'b') throw Object.assign(new Error('no'), { name: 'forbidden' });
    };
    const rows = await orderedBulkDocsWrapper(handler, async () => args.docs.map((d) => ({ ok: true, id: d._id })), args);
    expect(rows.map((r) => (r as { id: string }).id)).to.deep.equal(['a', 'b', 'c', 'd']);
    expect((rows[1] as { name?: string }).name).to.equal('forbidden');
    expect(db.reads).to.have.lengthOf(1);
    // the write itself got the database, not the stand-in
    expect(args.base).to.equal(db);
  });
});
