import { expect } from 'chai';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findExecutable } from '../../src/workers/dispatch/process/host.ts';

describe('findExecutable - the interpreter a process worker runs', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'lively-find-exe-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const nobody = { uid: 65534, gid: 65534 };

  /** `lcx` in a folder of its own with that folder's mode. */
  function interpreterIn(name: string, mode: number): string {
    const dir = path.join(root, name);
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'lcx'), '#!/bin/sh\nexit 0\n');
    chmodSync(path.join(dir, 'lcx'), 0o755);
    chmodSync(dir, mode);
    return dir;
  }

  it('for a run-as user, passes over one in a folder that user cannot enter (a shim under /root) for the next on PATH', () => {
    chmodSync(root, 0o755);
    const privateDir = interpreterIn('private', 0o700);
    const sharedDir = interpreterIn('shared', 0o755);
    const searchPath = [privateDir, sharedDir].join(path.delimiter);
    expect(findExecutable('lcx', searchPath)).to.equal(path.join(privateDir, 'lcx'));
    expect(findExecutable('lcx', searchPath, nobody)).to.equal(path.join(sharedDir, 'lcx'));
    expect(findExecutable('lcx', privateDir, nobody)).to.equal(undefined);
    expect(findExecutable('lcx', privateDir, { uid: 0, gid: 0 })).to.equal(path.join(privateDir, 'lcx'));
  });
});
