import { expect } from 'chai';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { kDefaultInterpreters } from '../../src/config/index.ts';
import { isLivelyError } from '../../src/shared/errors.ts';
import { attachmentNameProblem, revisionDir, writeRevisionFiles } from '../../src/workers/attachments.ts';
import { ProcessDispatcher } from '../../src/workers/dispatch/process.ts';
import { message, workerSpec } from '../fixtures/workers/process/specs.ts';

/** Every path under `root`, relative. */
function tree(root: string): string[] {
  return readdirSync(root, { recursive: true }).map(String).sort();
}

describe('worker attachments as files', () => {
  let root: string;
  let dataDir: string;
  beforeEach(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'lively-attach-'));
    dataDir = path.join(root, 'data');
  });
  afterEach(() => { rmSync(root, { recursive: true, force: true }); });

  const withAttachment = (name: string) => {
    const spec = workerSpec('sh', 'echo.sh');
    spec.attachments[name] = { contentType: 'text/plain', data: Buffer.from('echo owned') };
    return spec;
  };

  for (const [name, reason] of [
    ['../x', 'contains a path separator'],
    ['..', 'contains ".."'],
    ['a/b', 'contains a path separator'],
    ['a\\b', 'contains a path separator'],
    ['.bashrc', 'starts with a dot'],
    ['a\0b', 'contains a NUL byte'],
    ['', 'is empty'],
  ] as const) {
    it(`rejects ${JSON.stringify(name)}: ${reason}, writing nothing`, async () => {
      expect(attachmentNameProblem(name)).to.contain(reason);
      let err: unknown;
      try { await writeRevisionFiles(dataDir, withAttachment(name)); } catch (e) { err = e; }
      expect(isLivelyError(err, 'LC_BAD_ATTACHMENT_NAME')).to.equal(true);
      expect((err as Error).message).to.contain(reason);
      expect(tree(root)).to.deep.equal([]);
    });
  }

  it('a dispatch with a bad name is an error outcome and nothing is written outside', async () => {
    const d = new ProcessDispatcher({ interpreters: kDefaultInterpreters, dataDir });
    try {
      const spec = withAttachment('../x');
      const o = await d.dispatch({ spec, message: message(spec), onEmit: () => {} });
      expect(o.status).to.equal('error');
      expect(o.error!.code).to.equal('LC_BAD_ATTACHMENT_NAME');
      expect(o.error!.message).to.contain('"../x"');
      expect(tree(root)).to.deep.equal([]);
    } finally { await d.close(100); }
  });

  it('writes every attachment into a private directory per revision', async () => {
    const spec = withAttachment('helper.sh');
    const dir = await writeRevisionFiles(dataDir, spec);
    expect(dir).to.equal(revisionDir(dataDir, spec));
    expect(statSync(dir).mode & 0o777).to.equal(0o700);
    expect(readdirSync(dir).sort()).to.deep.equal(['echo.sh', 'helper.sh']);
    expect(readFileSync(path.join(dir, 'helper.sh'), 'utf8')).to.equal('echo owned');
    expect(await writeRevisionFiles(dataDir, spec)).to.equal(dir);
  });

  it('ids and revisions that look like paths stay inside the data directory', async () => {
    const spec = { ...workerSpec('sh', 'echo.sh'), id: '../../escape', rev: '..' };
    const dir = await writeRevisionFiles(dataDir, spec);
    expect(path.relative(path.join(dataDir, 'workers'), dir).split(path.sep)).to.have.length(2);
    expect(tree(root).every((p) => p.startsWith('data'))).to.equal(true);
  });

  it('a delegate that is not an attachment is refused', async () => {
    const spec = { ...workerSpec('sh', 'echo.sh'), delegate: 'missing.sh' };
    let err: unknown;
    try { await writeRevisionFiles(dataDir, spec); } catch (e) { err = e; }
    expect(isLivelyError(err, 'LC_INVALID_WORKER')).to.equal(true);
  });
});
