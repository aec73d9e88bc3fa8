/**
 * The embedded store as users run it: its child started from dist/store-server.js (built first
 * when a source changed, scripts/bundle.js), not from the sources through tsx, whose hooks would
 * resolve every `require` the store's packages make while serving (readable-stream 1 makes two
 * for every stream, so every read) and would add that to every figure of the store's CPU.
 */
import { fileURLToPath } from 'node:url';
import { builtStoreServer } from '../scripts/bundle.js';
import { EmbeddedStore, type EmbeddedStoreOptions } from '../src/store/embedded/supervisor.ts';

/** An EmbeddedStore of the built server, not started. */
export async function builtStore(opts: Omit<EmbeddedStoreOptions, 'serverFile'>): Promise<EmbeddedStore> {
  return new EmbeddedStore({ ...opts, serverFile: await builtStoreServer(fileURLToPath(new URL('../', import.meta.url))) });
}
