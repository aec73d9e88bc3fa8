import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundle, staleReason } from '../../scripts/bundle.js';

/**
 * dist/store-server.js, built again first when a source changed since the build (as the
 * command does): a spec's store is the one users run, its packages bundled (scripts/bundle.js).
 */
export async function builtStoreServer(): Promise<string> {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  if (staleReason(root) !== undefined) await bundle(root);
  return path.join(root, 'dist', 'store-server.js');
}
