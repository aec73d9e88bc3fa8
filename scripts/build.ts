/**
 * `npm run build`, and `prepare` (npm runs it after `npm install` / `npm ci` in a checkout and
 * before `npm pack`): builds dist/ — the command, the embedded store's child and the thread
 * runtime (scripts/bundle.js) — then runs every scripts/build-<part>.ts it finds, in name order,
 * each `export default async function build(root: string): Promise<void>` building one more part
 * of dist/. A failure names the part and exits non-zero, so an install does not end half built.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { bundle } from './bundle.js';

const kRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const kPart = /^build-[\w-]+\.ts$/;

type Build = (root: string) => Promise<void>;

/** The scripts/build-*.ts modules, in name order. */
export async function buildParts(root: string): Promise<string[]> {
  return (await readdir(path.join(root, 'scripts'))).filter((f) => kPart.test(f)).sort();
}

export async function build(root: string, log: (line: string) => void): Promise<void> {
  let began = Date.now();
  const inputs = await bundle(root);
  log(`built dist/ (cli, store-server, store-spawn, thread-runtime) from ${inputs.length} files in ${Date.now() - began} ms`);
  for (const file of await buildParts(root)) {
    began = Date.now();
    const mod = await import(pathToFileURL(path.join(root, 'scripts', file)).href) as { default?: unknown };
    if (typeof mod.default !== 'function') throw new Error(`scripts/${file} has no default export function build(root)`);
    try {
      await (mod.default as Build)(root);
    } catch (err) {
      throw new Error(`scripts/${file} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    log(`built ${file.slice('build-'.length, -'.ts'.length)} (scripts/${file}) in ${Date.now() - began} ms`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  build(kRoot, (line) => process.stdout.write(`livelycouch build: ${line}\n`)).catch((err: unknown) => {
    process.stderr.write(`livelycouch build: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
