/**
 * This runtime instance's name, kept in its data directory so that a restart is known as an
 * earlier boot of the same instance (whose durable batches it takes back at once).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Kept in `<dataDir>/instance`, made on first use. */
export function instanceName(dataDir: string): string {
  const file = path.join(dataDir, 'instance');
  try {
    const name = readFileSync(file, 'utf8').trim();
    if (/^[a-z0-9]{8,32}$/.test(name)) return name;
  } catch { /* made below */ }
  const name = randomBytes(6).toString('hex');
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, name + '\n');
  return name;
}
