/**
 * Mocha global fixture: every spec talks to one store. `COUCHDB_URL` points the suite at a real
 * Apache CouchDB 3.x; without it one embedded store (memory mode; on disk with SPEC_STORE=disk) is started for the run, from
 * the build in dist/.
 * The URL is handed to specs through the environment (see ./couch.ts). At the end, the suite
 * fails when a spec left anything in its temp folder (./suite-tmp.ts).
 */
// first: every module after it sees the suite's TMPDIR
import { kFixtureDir, leftBehind, removeSuiteTmp } from './suite-tmp.ts';
import { builtStoreServer } from './store-build.ts';
import { EmbeddedStore } from '../../src/store/embedded/supervisor.ts';
import { kUrlEnv, kEmbeddedPidEnv, setEmbeddedStore } from './couch.ts';

let store: EmbeddedStore | undefined;

async function startStore(): Promise<void> {
  if (process.env[kUrlEnv]) return;
  if (process.env.COUCHDB_URL) {
    process.env[kUrlEnv] = process.env.COUCHDB_URL;
    return;
  }
  // SPEC_STORE=disk: the store as `livelycouch start` runs it, its databases on disk (LevelDB)
  store = new EmbeddedStore({ dataDir: kFixtureDir, memory: process.env.SPEC_STORE !== 'disk', serverFile: await builtStoreServer() });
  await store.start();
  process.env[kUrlEnv] = store.url;
  process.env[kEmbeddedPidEnv] = String(store.pid);
  setEmbeddedStore(store);
}

// Started while mocha loads this file, before any spec file: `couchUrl()` then works even
// in a describe body.
await startStore();

export async function mochaGlobalSetup(): Promise<void> {
  await startStore();
}

export const mochaHooks = {
  afterAll(): void {
    const left = leftBehind();
    if (left.length > 0) throw new Error(`specs left ${left.length} entries in the temp folder: ${left.join(', ')}`);
  },
};

export async function mochaGlobalTeardown(): Promise<void> {
  await store?.stop();
  removeSuiteTmp();
}
