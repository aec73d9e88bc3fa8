import { expect } from 'chai';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Bundler } from '../../src/workers/bundler.ts';
import { isLivelyError } from '../../src/shared/errors.ts';
import { fixtureSpec, inlineSpec } from '../fixtures/workers/thread/index.ts';

describe('bundleWorker', function () {
  let dir: string;
  before(() => { dir = mkdtempSync(path.join(os.tmpdir(), 'lc-bundle-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps packages and builtins external for node, as CommonJS requires', async () => {
    const b = await new Bundler().bundle(inlineSpec('ext', { 'main.js': "const nano = require('nano'); const fs = require('node:fs'); module.exports = () => [nano, fs];" }), { platform: 'node' });
    expect(b.code).to.include('require("nano")').and.include('require("node:fs")');
    expect(b.file).to.equal(undefined);
  });

  it("refuses node builtins for 'neutral' (isolate) bundles with LC_BUNDLE_FAILED", async () => {
    const err = await new Bundler().bundle(inlineSpec('iso', { 'main.js': "const fs = require('fs'); module.exports = () => fs;" }), { platform: 'neutral' }).catch((e) => e);
    expect(isLivelyError(err, 'LC_BUNDLE_FAILED')).to.equal(true);
    expect(err.message).to.match(/node builtin 'fs' imported by main\.js is not available to isolate workers/);
    expect(err.details).to.include({ file: 'main.js', line: 1 });
  });

  it('names a delegate that is not an attachment', async () => {
    const err = await new Bundler().bundle(fixtureSpec('handler', 'nope.js'), { platform: 'node' }).catch((e) => e);
    expect(err.code).to.equal('LC_BUNDLE_FAILED');
    expect(err.message).to.match(/delegate 'nope\.js' is not one of its attachments \(main\.js\)/);
  });

  it('caches by (id, rev) and a new revision replaces the file and its source map on disk', async () => {
    const bundler = new Bundler();
    const v1 = fixtureSpec('handler', 'main.js', { id: 'rev-me' });
    const a = await bundler.bundle(v1, { platform: 'node', cacheDir: dir });
    expect(await bundler.bundle(v1, { platform: 'node', cacheDir: dir })).to.equal(a);
    const v2 = fixtureSpec('handler', 'main.js', { id: 'rev-me' });
    const b = await bundler.bundle(v2, { platform: 'node', cacheDir: dir });
    expect(b.key).to.equal(`rev-me@${v2.rev}`);
    expect(existsSync(b.file!)).to.equal(true);
    expect(existsSync(`${b.file!}.map`)).to.equal(true);
    expect(existsSync(a.file!)).to.equal(false);
    expect(existsSync(`${a.file!}.map`)).to.equal(false);
    expect(readdirSync(dir).sort()).to.deep.equal([path.basename(b.file!), `${path.basename(b.file!)}.map`]);
    expect(bundler.stats()).to.include({ built: 2, fromMemory: 1 });
    // A restart reads both back instead of bundling again.
    const again = await new Bundler().bundle(v2, { platform: 'node', cacheDir: dir });
    expect(again).to.deep.include({ code: b.code, map: b.map, file: b.file });
  });

  it('a bundle\'s source map names each attachment it came from', async () => {
    const b = await new Bundler().bundle(inlineSpec('mapped', { 'main.js': "module.exports = require('./util.js');", 'util.js': 'module.exports = () => 1;' }), { platform: 'node' });
    expect(JSON.parse(b.map).sources).to.deep.equal(['lc-attachment:util.js', 'lc-attachment:main.js']);
    expect(b.code).to.not.include('sourceMappingURL');
  });
});
