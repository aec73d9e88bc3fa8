/**
 * The suite's own temporary folder: os.tmpdir() (and every child, through TMPDIR) points into
 * it before any other module runs, so that what a spec leaves behind is found at the end even
 * while other processes use the machine's temp folder.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const kRootEnv = 'LIVELY_TEST_SUITE_TMP';

/** Folders of earlier runs that were killed before their teardown (their pid is gone). */
function sweepKilledRuns(): void {
  for (const name of readdirSync(os.tmpdir())) {
    if (!name.startsWith('lively-suite-')) continue;
    const dir = path.join(os.tmpdir(), name);
    let pid: number;
    try { pid = Number(readFileSync(path.join(dir, 'pid'), 'utf8')); } catch { continue; } // still starting, or not ours
    try { process.kill(pid, 0); continue; } catch (err) { if ((err as NodeJS.ErrnoException).code === 'EPERM') continue; }
    rmSync(dir, { recursive: true, force: true });
  }
}

// mocha may evaluate the support files twice: both must mean one folder
let root = process.env[kRootEnv];
if (root === undefined) {
  sweepKilledRuns();
  root = mkdtempSync(path.join(os.tmpdir(), 'lively-suite-'));
  writeFileSync(path.join(root, 'pid'), String(process.pid));
  process.env[kRootEnv] = root;
}
const kRoot = root;
/** what specs may create, and must remove */
export const kSuiteTmp = path.join(kRoot, 'tmp');
/** the fixture's own files (the suite's store), removed after the check */
export const kFixtureDir = path.join(kRoot, 'fixture');
mkdirSync(kSuiteTmp, { recursive: true });
mkdirSync(kFixtureDir, { recursive: true });
// as the machine's temp folder is: other users (a worker run as nobody) reach what specs make there
chmodSync(kRoot, 0o755);
chmodSync(kSuiteTmp, 0o1777);
// Tools keep compile caches in the temp folder: tsx its own, and TypeScript's compiler turns on
// Node's (`node-compile-cache`, Node 22 and later). Children keep sharing the machine's caches
// instead of compiling everything again in each run; they are not what specs leave behind.
const kToolCaches = [`tsx-${process.geteuid?.() ?? os.userInfo().username}`, 'node-compile-cache'];
for (const cache of kToolCaches) {
  const shared = path.join(os.tmpdir(), cache);
  mkdirSync(shared, { recursive: true, mode: 0o700 });
  if (!existsSync(path.join(kSuiteTmp, cache))) symlinkSync(shared, path.join(kSuiteTmp, cache));
}
process.env.TMPDIR = kSuiteTmp;

/** What the specs left in the suite's temp folder. */
export function leftBehind(): string[] {
  return readdirSync(kSuiteTmp).filter((name) => !kToolCaches.includes(name)).sort();
}

export function removeSuiteTmp(): void {
  rmSync(kRoot, { recursive: true, force: true });
}
