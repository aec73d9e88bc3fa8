/**
 * What one LevelDB read costs through leveldown, the way the embedded store reads (on disk):
 * 20,000 keys read one after another, 16 at once, and in getMany calls of 400. Shows why the
 * store reads a `_changes` page's metadata ahead with getMany (src/store/embedded/read-ahead.ts).
 * Prints per-key wall time and CPU for each, three rounds.  node --import tsx bench/leveldown-get.ts
 */
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

interface Down {
  open(cb: (err?: Error) => void): void;
  close(cb: (err?: Error) => void): void;
  batch(ops: Array<{ type: 'put'; key: string; value: string }>, cb: (err?: Error) => void): void;
  get(key: string, options: { asBuffer: boolean }, cb: (err: Error | null, value?: string) => void): void;
  getMany(keys: string[], options: { asBuffer: boolean }, cb: (err: Error | null, values?: string[]) => void): void;
}

const leveldown = createRequire(import.meta.url)('leveldown') as (location: string) => Down;
const dir = mkdtempSync(path.join(os.tmpdir(), 'lc-bench-leveldown-'));
const db = leveldown(dir);
const call = (fn: (cb: (err?: Error | null) => void) => void) => new Promise<void>((resolve, reject) => fn((err) => (err ? reject(err) : resolve())));
await call((cb) => db.open(cb));
const n = 20_000;
await call((cb) => db.batch(Array.from({ length: n }, (_, i) => ({ type: 'put' as const, key: `k${i}`, value: JSON.stringify({ id: `d${i}`, rev_tree: [{ pos: 1, ids: ['abc', {}, []] }], seq: i }) })), cb));
const get = (k: string) => new Promise<void>((resolve, reject) => db.get(k, { asBuffer: false }, (err) => (err ? reject(err) : resolve())));
async function measure(name: string, run: () => Promise<void>): Promise<void> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await run();
  const wall = ((performance.now() - t0) * 1000) / n;
  const c = process.cpuUsage(c0);
  console.log(`${name.padEnd(22)} ${wall.toFixed(1).padStart(6)} µs wall, ${((c.user + c.system) / n).toFixed(1).padStart(6)} µs CPU a key`);
}
console.log(`${os.cpus()[0]?.model} x${os.cpus().length}, node ${process.version}`);
for (let round = 1; round <= 3; round++) {
  console.log(`round ${round}`);
  await measure('one after another', async () => { for (let i = 0; i < n; i++) await get(`k${i}`); });
  await measure('16 at once', async () => { for (let i = 0; i < n; i += 16) await Promise.all(Array.from({ length: 16 }, (_, j) => get(`k${i + j}`))); });
  await measure('getMany of 400', async () => { for (let i = 0; i < n; i += 400) await call((cb) => db.getMany(Array.from({ length: 400 }, (_, j) => `k${i + j}`), { asBuffer: false }, cb)); });
}
await call((cb) => db.close(cb));
rmSync(dir, { recursive: true, force: true });
