import { expect } from 'chai';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { credentialsApart } from '../../src/store/couch.ts';
import { EmbeddedStore } from '../../src/store/embedded/supervisor.ts';
import { installSyncWrites } from '../../src/store/embedded/sync-writes.ts';
import { builtStoreServer } from '../support/store-build.ts';

const require = createRequire(import.meta.url);

type Cb<T = unknown> = (err: Error | null | undefined, v?: T) => void;
interface Down {
  open(cb: Cb): void;
  close(cb: Cb): void;
  put(key: string, value: string, options: object, cb: Cb): void;
  del(key: string, options: object, cb: Cb): void;
  get(key: string, options: { asBuffer: boolean }, cb: Cb<string>): void;
  batch(ops: Array<{ type: 'put' | 'del'; key: string; value?: string }>, options: object, cb: Cb): void;
  batch(): { put(key: string, value: string): void; write(options: object, cb: Cb): void };
}

/**
 * The embedded store on disk syncs every write before answering it (src/store/embedded/sync-writes.ts).
 * What is checked here is where `sync` is used: the options every write of a real LevelDB
 * reaches leveldown's native binding with, and that the data is written.
 */
describe('embedded store on disk: every write synced to disk before it is answered', function () {
  this.timeout(60_000);

  describe('leveldown with synced writes (real LevelDB)', () => {
    const binding = require('leveldown/binding') as Record<string, (...args: unknown[]) => unknown>;
    const seen: Array<{ call: string; sync: unknown }> = [];
    const originals = new Map<string, (...args: unknown[]) => unknown>();
    let dir: string;
    let db: Down;
    const call = <T>(fn: (cb: Cb<T>) => void) => new Promise<T>((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))));

    before(async () => {
      // Recorded where LevelDB gets them: the write calls of leveldown's native binding (their
      // options are the argument before the callback), passed on unchanged.
      for (const name of ['db_put', 'db_del', 'batch_do', 'batch_write']) {
        const original = binding[name]!;
        originals.set(name, original);
        binding[name] = (...args: unknown[]) => {
          seen.push({ call: name, sync: (args[args.length - 2] as { sync?: unknown } | undefined)?.sync });
          return original(...args);
        };
      }
      const LevelDOWN = require('leveldown') as ((location: string) => Down) & { prototype: object };
      expect(installSyncWrites(LevelDOWN)).to.equal(true);
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-sync-writes-'));
      db = LevelDOWN(dir);
      await call((cb) => db.open(cb));
    });
    after(async () => {
      for (const [name, original] of originals) binding[name] = original;
      await call((cb) => db.close(cb));
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('a put, a del, a batch and a chained batch each reach LevelDB with sync: true, and what they wrote reads back', async () => {
      const options = { sync: false, mine: 1 };
      await call((cb) => db.put('a', '1', options, cb));
      await call((cb) => db.batch([{ type: 'put', key: 'b', value: '2' }, { type: 'put', key: 'c', value: '3' }], {}, cb));
      await call((cb) => db.del('c', {}, cb));
      const chained = db.batch();
      chained.put('d', '4');
      await call((cb) => chained.write({}, cb));
      expect(seen).to.deep.equal([
        { call: 'db_put', sync: true }, { call: 'batch_do', sync: true }, { call: 'db_del', sync: true }, { call: 'batch_write', sync: true },
      ]);
      expect(options, 'the caller\'s options are left as they were').to.deep.equal({ sync: false, mine: 1 });
      const read = async (key: string) => call<string>((cb) => db.get(key, { asBuffer: false }, cb)).catch((err: Error) => (/NotFound/.test(err.message) ? 'not found' : err.message));
      expect(await Promise.all(['a', 'b', 'c', 'd'].map(read))).to.deep.equal(['1', '2', 'not found', '4']);
    });

    it('installing twice wraps once; something that is not a leveldown is left alone', () => {
      const LevelDOWN = require('leveldown') as { prototype: object };
      const before = (LevelDOWN.prototype as { _batch: unknown })._batch;
      expect(installSyncWrites(LevelDOWN)).to.equal(true);
      expect((LevelDOWN.prototype as { _batch: unknown })._batch).to.equal(before);
      const other = { prototype: { _put() {}, _batch() {} } };
      expect(installSyncWrites(other)).to.equal(false);
      expect(Object.getOwnPropertySymbols(other.prototype)).to.have.length(0);
    });
  });

  describe('the store process', () => {
    const dirs: string[] = [];
    const stores: EmbeddedStore[] = [];
    after(async () => {
      await Promise.all(stores.map((s) => s.stop()));
      for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    });
    async function started(opts: { memory?: boolean; sync?: boolean }): Promise<EmbeddedStore> {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-sync-store-'));
      dirs.push(dataDir);
      const store = new EmbeddedStore({ dataDir, serverFile: await builtStoreServer(), ...opts });
      stores.push(store);
      await store.start();
      return store;
    }
    async function writesAndReads(store: EmbeddedStore): Promise<unknown> {
      const { base, authorization } = credentialsApart(store.url);
      const headers = { authorization: authorization!, 'content-type': 'application/json' };
      expect((await request(`${base}/synced`, { method: 'PUT', headers })).statusCode).to.equal(201);
      const bulk = await request(`${base}/synced/_bulk_docs`, { method: 'POST', headers, body: JSON.stringify({ docs: [{ _id: 'a', n: 1 }, { _id: 'b', n: 2 }] }) });
      expect(bulk.statusCode).to.equal(201);
      await bulk.body.dump();
      const res = await request(`${base}/synced/_all_docs?include_docs=true`, { headers });
      return ((await res.body.json()) as { rows: Array<{ doc: { n: number } }> }).rows.map((r) => r.doc.n);
    }

    it('on disk syncs its writes unless told not to, in memory has no disk to sync; each answers its writes alike', async () => {
      const [onDisk, unsynced, inMemory] = await Promise.all([started({}), started({ sync: false }), started({ memory: true })]);
      expect([onDisk.syncsWrites, unsynced.syncsWrites, inMemory.syncsWrites]).to.deep.equal([true, false, false]);
      for (const store of [onDisk, unsynced, inMemory]) expect(await writesAndReads(store)).to.deep.equal([1, 2]);
      await onDisk.stop();
      expect(onDisk.syncsWrites, 'once stopped').to.equal(false);
    });

    it('a restarted store child syncs again: the setting goes with every start', async () => {
      const store = await started({});
      const first = store.pid;
      const exited = new Promise((r) => store.once('exit', r));
      const restarted = new Promise((r) => store.once('restart', r));
      process.kill(first!, 'SIGKILL');
      await exited;
      expect(store.syncsWrites, 'while no store runs').to.equal(false);
      await restarted;
      expect(store.pid).to.not.equal(first);
      expect(store.syncsWrites).to.equal(true);
      expect(await writesAndReads(store)).to.deep.equal([1, 2]);
    });
  });
});
