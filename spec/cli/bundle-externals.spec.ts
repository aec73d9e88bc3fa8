/**
 * The embedded store's bundle leaves some packages to node's require (scripts/bundle.js,
 * storeExternals). Each must be the copy its importer would get where it lies in node_modules,
 * not whatever the bundle's own folder finds: an install may nest a copy under its importer.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as esbuild from 'esbuild';
import { storeExternals } from '../../scripts/bundle.js';

describe('the store bundle\'s packages left to node (storeExternals)', function () {
  this.timeout(30_000);

  it('a package left out is required from where its importer lies: a copy nested under the importer wins over the top-level one', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lively-externals-'));
    try {
      const write = (file: string, text: string) => {
        mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
        writeFileSync(path.join(dir, file), text);
      };
      write('node_modules/b/package.json', '{"name":"b","main":"index.js"}');
      write('node_modules/b/index.js', "module.exports = 'top-level b';\n");
      write('node_modules/a/package.json', '{"name":"a","main":"index.js"}');
      write('node_modules/a/index.js', "module.exports = 'a sees ' + require('b');\n");
      write('node_modules/a/node_modules/b/package.json', '{"name":"b","main":"index.js"}');
      write('node_modules/a/node_modules/b/index.js', "module.exports = 'nested b';\n");
      write('src/entry.js', "import a from 'a';\nimport b from 'b';\nconsole.log(JSON.stringify([a, b]));\n");
      await esbuild.build({
        absWorkingDir: dir, entryPoints: [path.join(dir, 'src/entry.js')], outfile: path.join(dir, 'dist/out.mjs'),
        bundle: true, format: 'esm', platform: 'node', logLevel: 'silent', plugins: [storeExternals(new Set(['b']))],
        banner: { js: "import { createRequire as __c } from 'node:module'; const require = __c(import.meta.url);" },
      });
      const run = spawnSync(process.execPath, [path.join(dir, 'dist/out.mjs')], { encoding: 'utf8' });
      expect(run.stderr).to.equal('');
      // a, bundled, gets its own nested b; the entry, outside node_modules, gets the top-level one
      expect(JSON.parse(run.stdout)).to.deep.equal(['a sees nested b', 'top-level b']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
