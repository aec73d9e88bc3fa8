/**
 * The suite's own temporary folder: os.tmpdir() (and every child, through TMPDIR) points into
 * it before any other module runs, so that what a spec leaves behind is found at the end even
 * while other processes use the machine's temp folder.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const kRootEnv = 'LIVELY_TEST_SUITE_TMP';
// mocha may evaluate the support files twice: both must mean one folder
const kRoot = process.env[kRootEnv] ?? mkdtempSync(path.join(os.tmpdir(), 'lively-suite-'));
process.env[kRootEnv] = kRoot;
/** what specs may create, and must remove */
export const kSuiteTmp = path.join(kRoot, 'tmp');
/** the fixture's own files (the suite's store), removed after the check */
export const kFixtureDir = path.join(kRoot, 'fixture');
mkdirSync(kSuiteTmp, { recursive: true });
mkdirSync(kFixtureDir, { recursive: true });
// tsx keeps its compile cache in the temp folder: children started with `--import tsx` keep
// sharing the machine's one instead of compiling everything again in each run
const kTsxCache = `tsx-${process.geteuid?.() ?? os.userInfo().username}`;
const kOwnTsxCache = path.join(os.tmpdir(), kTsxCache);
mkdirSync(kOwnTsxCache, { recursive: true, mode: 0o700 });
if (!existsSync(path.join(kSuiteTmp, kTsxCache))) symlinkSync(kOwnTsxCache, path.join(kSuiteTmp, kTsxCache));
process.env.TMPDIR = kSuiteTmp;

/** What the specs left in the suite's temp folder. */
export function leftBehind(): string[] {
  return readdirSync(kSuiteTmp).filter((name) => name !== kTsxCache).sort();
}

export function removeSuiteTmp(): void {
  rmSync(kRoot, { recursive: true, force: true });
}
