/**
 * The embedded store defers pouchdb-find (src/store/embedded/lazy-find.ts): express-pouchdb
 * installs a stand-in when the store starts, and the real plugin loads at the first `_find`,
 * `_index` or `_explain`, answering as if it had been loaded at once. Run in a node process of
 * its own, as the store child runs it: the require cache is the process's. The routes through
 * the real store are in ./conformance.spec.ts ("_find, indexes and views").
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const kLazy = fileURLToPath(new URL('../../src/store/embedded/lazy-find.ts', import.meta.url));

const kChild = `
import { createRequire } from 'node:module';
import { deferPouchFind } from ${JSON.stringify(kLazy)};
const require = createRequire(${JSON.stringify(import.meta.url)});
const findFile = createRequire(require.resolve('express-pouchdb/package.json')).resolve('pouchdb-find');
deferPouchFind(require);
const PouchDB = require('pouchdb-node');
PouchDB.plugin(require('pouchdb-adapter-memory'));
// what express-pouchdb's find route does when the store starts
PouchDB.plugin(createRequire(require.resolve('express-pouchdb/package.json'))('pouchdb-find'));
const mapreduceLoaded = () => Object.keys(require.cache).some((k) => k.includes('pouchdb-abstract-mapreduce'));
const mapreduceAtStart = mapreduceLoaded();
const standInAtStart = require.cache[findFile].exports.find.toString().includes('load()');
const db = new PouchDB('lazy-find-spec', { adapter: 'memory' });
await db.bulkDocs([{ _id: 'a', kind: 'x', n: 1 }, { _id: 'b', kind: 'y', n: 2 }, { _id: 'c', kind: 'x', n: 3 }]);
const created = await db.createIndex({ index: { fields: ['kind'] }, name: 'by-kind', ddoc: 'idx' });
const found = await db.find({ selector: { kind: 'x' }, fields: ['_id', 'n'] });
const indexes = await db.getIndexes();
// the callback form, as express-pouchdb calls it
const viaCallback = await new Promise((resolve, reject) => db.find({ selector: { n: { $gt: 1 } } }, (err, res) => (err ? reject(err) : resolve(res.docs.map((d) => d._id).sort()))));
const badFind = await db.find({}).then(() => 'accepted', (e) => e.message);
process.stdout.write(JSON.stringify({
  standInAtStart,
  mapreduceAtStart,
  created: created.result,
  found: found.docs,
  indexes: indexes.indexes.map((i) => i.name),
  viaCallback,
  badFind,
  realAfter: !require.cache[findFile].exports.find.toString().includes('load()'),
  mapreduceAfter: mapreduceLoaded(),
}));
`;

describe('embedded store: pouchdb-find loads on first use', function () {
  this.timeout(30_000);

  it('is a stand-in when the store starts; the first call loads it and every method answers as the plugin does', () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', kChild], { encoding: 'utf8' });
    const r = JSON.parse(out);
    expect(r.standInAtStart, 'the plugin express-pouchdb installs is the stand-in').to.equal(true);
    expect(r.mapreduceAtStart, "pouchdb-find's map/reduce (pouchdb-abstract-mapreduce) loaded with it").to.equal(false);
    expect(r.created).to.equal('created');
    expect(r.found).to.deep.equal([{ _id: 'a', n: 1 }, { _id: 'c', n: 3 }]);
    expect(r.indexes).to.deep.equal(['_all_docs', 'by-kind']);
    expect(r.viaCallback).to.deep.equal(['b', 'c']);
    expect(r.badFind, 'its own error for a bad request').to.equal('you must provide a selector when you find()');
    expect(r.realAfter, 'the real plugin is in the require cache').to.equal(true);
    expect(r.mapreduceAfter, 'with its map/reduce').to.equal(true);
  });
});
