/**
 * Builds the web console's front end (console/*.ts, console/console.css, uPlot) with esbuild
 * into dist/console/: app.js (the console, for signed-in admins), signin.js (the sign-in page)
 * and console.css. `scripts/build-console.ts` runs it at install time; the runtime runs it on
 * the console's first request when dist/console/ is missing (a checkout that skipped the
 * install-time build) or older than a file of console/ (a checkout updated since), so the console
 * works either way and never needs the network.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The files the console is served from, by the name they are served under. */
export const kConsoleFiles = ['app.js', 'signin.js', 'console.css'] as const;
export type ConsoleFile = (typeof kConsoleFiles)[number];

/** The checkout's root: two folders above this file. */
export const kPackageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export function consoleDist(root: string): string {
  return path.join(root, 'dist', 'console');
}

/** Bundles the console into `<root>/dist/console`, replacing what was there only once all of it is built. */
export async function buildConsole(root: string): Promise<void> {
  const { build } = await import('esbuild');
  const src = path.join(root, 'console');
  const out = consoleDist(root);
  const tmp = `${out}.${process.pid}.${Date.now()}.tmp`;
  await mkdir(tmp, { recursive: true });
  try {
    const common = { bundle: true, minify: true, logLevel: 'silent' as const, legalComments: 'none' as const, absWorkingDir: root };
    await build({ ...common, entryPoints: { app: path.join(src, 'app.ts'), signin: path.join(src, 'signin.ts') }, outdir: tmp, format: 'iife', target: ['chrome110', 'firefox110', 'safari16'], charset: 'utf8' });
    await build({ ...common, entryPoints: { console: path.join(src, 'console.css') }, outdir: tmp, loader: { '.css': 'css' } });
    await rm(out, { recursive: true, force: true });
    await mkdir(path.dirname(out), { recursive: true });
    await rename(tmp, out);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

let building: Promise<void> | undefined;

/** Whether dist/console/ lacks a file, or a source in console/ changed after it was built. */
export function consoleStale(root: string): boolean {
  const dir = consoleDist(root);
  if (!kConsoleFiles.every((f) => existsSync(path.join(dir, f)))) return true;
  const built = Math.min(...kConsoleFiles.map((f) => statSync(path.join(dir, f)).mtimeMs));
  const src = path.join(root, 'console');
  if (!existsSync(src)) return false;
  return readdirSync(src).some((f) => statSync(path.join(src, f)).mtimeMs > built);
}

/** The console's files, built first when any is missing or out of date. */
export async function loadConsoleFiles(root: string): Promise<Record<ConsoleFile, Buffer>> {
  const dir = consoleDist(root);
  if (consoleStale(root)) {
    building ??= buildConsole(root).finally(() => { building = undefined; });
    await building;
  }
  const out = {} as Record<ConsoleFile, Buffer>;
  for (const f of kConsoleFiles) out[f] = await readFile(path.join(dir, f));
  return out;
}
