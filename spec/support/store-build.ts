import { fileURLToPath } from 'node:url';
import { builtStoreServer as built } from '../../scripts/bundle.js';

/** dist/store-server.js, built again first when stale (scripts/bundle.js): a spec's store is the one users run. */
export function builtStoreServer(): Promise<string> {
  return built(fileURLToPath(new URL('../../', import.meta.url)));
}
