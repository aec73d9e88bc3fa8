#!/usr/bin/env node
/**
 * The installed command. It runs the JavaScript built into dist/ at install (`npm run build`,
 * scripts/build.ts), not the TypeScript sources, so a command starts without compiling anything.
 * A dist/ older than a source it was built from (a checkout edited or pulled since) is rebuilt
 * here first, with one line on stderr; if that fails, the sources run through tsx as before.
 * `start` and `dev` run the runtime, whose isolates need `node --no-node-snapshot`: started
 * without it, they run again in a node that has it. Every other command runs in this process,
 * without that flag, which makes node itself start slower. `start` and `dev` spawn the embedded
 * store's child first of all (src/store/embedded/spawn.ts).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { bundle, staleReason } from '../scripts/bundle.js';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const args = process.argv.slice(2);
const command = args.find((a) => !a.startsWith('-')) ?? '';
const runsRuntime = command === 'start' || command === 'dev';
const snapshotOff = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].includes('--no-node-snapshot');

let entry = path.join(root, 'dist', 'cli.js');
let viaTsx = false;
const stale = staleReason(root);
if (stale !== undefined) {
  const began = Date.now();
  try {
    await bundle(root);
    process.stderr.write(`livelycouch: ${stale}; rebuilt dist/ in ${Date.now() - began} ms\n`);
  } catch (err) {
    const reason = String(err instanceof Error ? err.message : err).split('\n')[0];
    process.stderr.write(`livelycouch: ${stale} and rebuilding it failed (${reason}); running the TypeScript sources, which start slower\n`);
    entry = path.join(root, 'src', 'cli', 'main.ts');
    viaTsx = true;
  }
}

if (viaTsx || (runsRuntime && !snapshotOff)) {
  const flags = [
    ...(runsRuntime ? ['--no-node-snapshot'] : []),
    ...(viaTsx ? ['--import', import.meta.resolve('tsx')] : []),
  ];
  const child = spawn(process.execPath, [...flags, entry, ...args], { stdio: 'inherit' });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
} else {
  // the embedded store's child loads its packages while this process loads the runtime
  if (runsRuntime) (await import(pathToFileURL(path.join(root, 'dist', 'store-spawn.js')).href)).spawnEarlyStore(args);
  await import(pathToFileURL(entry).href);
}
