import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LivelyError } from '../../src/shared/errors.ts';
import { connect } from '../../src/store/couch.ts';
import { deployDir } from '../../src/core/deploy.ts';
import type { Runtime } from '../../src/runtime.ts';
import { dropPrefix, uniquePrefix, couchUrl } from '../support/couch.ts';
import { firstOutcome, startRuntime } from '../support/runtime.ts';

type Files = Record<string, string>;

/** An app folder in a temp dir: one worker `w` from `files`, one event `/e` running it. */
function appWith(files: Files, doc: Record<string, unknown> = { type: 'node', delegate: 'index.js' }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lively-bundle-'));
  const w = path.join(dir, 'workers', 'w');
  mkdirSync(w, { recursive: true });
  mkdirSync(path.join(dir, 'events'));
  writeFileSync(path.join(w, 'doc.json'), JSON.stringify(doc));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(w, name)), { recursive: true });
    writeFileSync(path.join(w, name), text);
  }
  writeFileSync(path.join(dir, 'events', 'e.json'), JSON.stringify({ trigger: { '/e': {} }, workers: { w: {} } }));
  return dir;
}

/** A package in the worker folder's node_modules, as `npm install` leaves it. */
const pkg = (name: string, main: string, extra: Files = {}): Files => ({
  [`node_modules/${name}/package.json`]: JSON.stringify({ name, version: '1.0.0', main: 'index.js' }),
  [`node_modules/${name}/index.js`]: main,
  ...Object.fromEntries(Object.entries(extra).map(([k, v]) => [`node_modules/${name}/${k}`, v])),
});

describe('deploy: worker code is bundled before anything is written', () => {
  const prefix = uniquePrefix();
  const nano = connect(couchUrl());
  const events = nano.use<Record<string, unknown>>(`${prefix}events`);
  const workers = nano.use<Record<string, unknown>>(`${prefix}workers`);
  const dirs: string[] = [];
  let rt: Runtime;
  before(async () => { rt = await startRuntime({ config: { dbPrefix: prefix } }); });
  after(async () => {
    await rt.stop();
    for (const d of [...dirs, rt.config.dataDir]) rmSync(d, { recursive: true, force: true });
    await dropPrefix(prefix);
  });

  const app = (files: Files, doc?: Record<string, unknown>) => { const d = appWith(files, doc); dirs.push(d); return d; };

  async function refused(dir: string, file: string, reason: RegExp): Promise<void> {
    let err: unknown;
    try { await deployDir(dir, events, workers); } catch (e) { err = e; }
    expect(err, 'deploy should fail').to.be.instanceOf(LivelyError);
    const msg = (err as Error).message;
    expect(msg.startsWith(path.join(dir, file)), msg).to.equal(true);
    expect(msg).to.match(reason);
    const rows = (await workers.list()).rows.filter((r) => r.id === 'w');
    expect(rows, 'nothing written').to.deep.equal([]);
  }

  it('a node worker that does not parse: refused naming file, line and column', () =>
    refused(app({ 'index.js': 'module.exports = async () => {\n  return 1 +;\n};\n' }), 'workers/w/index.js:2:', /Unexpected/));

  it('a relative import of a file the folder does not have: refused naming the importing file', () =>
    refused(app({ 'index.js': "module.exports = require('./util.js');\n" }), 'workers/w/index.js:1:', /cannot find module '\.\/util\.js'/));

  it('a TypeScript worker with a type error in its syntax: refused the same way', () =>
    refused(app({ 'main.ts': 'export default async (msg: { n: number }) => msg.n +;\n' }, { delegate: 'main.ts' }), 'workers/w/main.ts:1:', /Unexpected/));

  it('an isolate worker importing a node builtin: refused', () =>
    refused(app({ 'index.js': "const fs = require('fs'); module.exports = () => 1;\n" }, { type: 'isolate', delegate: 'index.js' }), 'workers/w/index.js', /not available to isolate workers/));

  it('a dependency with native code: refused naming the package, with the way out', () =>
    refused(app({
      'package.json': JSON.stringify({ name: 'w', dependencies: { natty: '1.0.0' } }),
      'index.js': "module.exports = () => require('natty').add(1, 2);\n",
      ...pkg('natty', "module.exports = require('./build/Release/natty.node');\n", { 'binding.gyp': '{}', 'build/Release/natty.node': 'ELF' }),
    }), 'workers/w/package.json', /package "natty" has native code.*process worker/));

  it('npm dependencies in the worker folder are bundled into the document, which runs on a runtime that does not have them', async () => {
    const dir = app({
      'package.json': JSON.stringify({ name: 'w', dependencies: { 'lc-pad': '1.0.0', '@lc/shout': '1.0.0' } }),
      'index.ts': "import pad from 'lc-pad';\nimport { shout } from '@lc/shout';\nexport default async (msg: { parameters: { word?: string } }) => ({ out: pad(shout(msg.parameters.word ?? 'hi'), 6) });\n",
      ...pkg('lc-pad', "module.exports = (s, n) => s.padStart(n, '*');\n"),
      ...pkg('@lc/shout', "exports.shout = (s) => s.toUpperCase() + '!';\n"),
    }, { type: 'node', delegate: 'index.ts' });
    const report = await deployDir(dir, events, workers);
    expect(report.written).to.include('w');
    const doc = (await workers.get('w')) as unknown as { delegate: string; bundled: { from: string }; _attachments: Record<string, unknown> };
    expect(doc.delegate).to.equal('bundle.cjs');
    expect(doc.bundled).to.deep.equal({ from: 'index.ts' });
    expect(Object.keys(doc._attachments).sort()).to.deep.equal(['bundle.cjs', 'bundle.cjs.map', 'index.ts', 'package.json']);
    // The runtime's own node_modules has neither package: the document carries them.
    expect(await firstOutcome(rt, '/e?wait=true&word=ok')).to.deep.include({ status: 'ok', result: { out: '***OK!' } });
  });
});
