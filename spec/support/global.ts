/**
 * Mocha global fixture: every spec talks to one store. `COUCHDB_URL` points the suite at a real
 * Apache CouchDB 3.x; without it one embedded store (memory mode) is started for the run.
 * The URL is handed to specs through the environment (see ./couch.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EmbeddedStore } from '../../src/store/embedded/supervisor.ts';
import { kUrlEnv, kEmbeddedPidEnv, setEmbeddedStore } from './couch.ts';

let store: EmbeddedStore | undefined;
let dataDir: string | undefined;

async function startStore(): Promise<void> {
  if (process.env[kUrlEnv]) return;
  if (process.env.COUCHDB_URL) {
    process.env[kUrlEnv] = process.env.COUCHDB_URL;
    return;
  }
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lively-spec-store-'));
  store = new EmbeddedStore({ dataDir, memory: true });
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

export async function mochaGlobalTeardown(): Promise<void> {
  await store?.stop();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
}
