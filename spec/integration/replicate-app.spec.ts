import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect } from '../../src/store/couch.ts';
import { initStore } from '../../src/store/init.ts';
import { deployDir } from '../../src/core/deploy.ts';
import { pullApp } from '../../src/core/pull.ts';
import type { Runtime } from '../../src/runtime.ts';
import { couchUrl, dropPrefix, uniquePrefix } from '../support/couch.ts';
import { firstOutcome, startRuntime } from '../support/runtime.ts';

/** An app whose worker needs an npm package that no runtime has installed. */
function appWithDependency(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lively-travel-'));
  const w = path.join(dir, 'workers', 'greet');
  mkdirSync(path.join(w, 'node_modules', 'lc-greeting'), { recursive: true });
  mkdirSync(path.join(dir, 'events'));
  writeFileSync(path.join(w, 'doc.json'), JSON.stringify({ type: 'node', delegate: 'index.js', arguments: { who: 'world' } }));
  writeFileSync(path.join(w, 'package.json'), JSON.stringify({ name: 'greet', dependencies: { 'lc-greeting': '1.0.0' } }));
  writeFileSync(path.join(w, 'index.js'), "const greet = require('lc-greeting');\nmodule.exports = async (msg) => greet(msg.arguments.who);\n");
  writeFileSync(path.join(w, 'node_modules', 'lc-greeting', 'package.json'), JSON.stringify({ name: 'lc-greeting', version: '1.0.0' }));
  writeFileSync(path.join(w, 'node_modules', 'lc-greeting', 'index.js'), "module.exports = (who) => ({ text: 'hello, ' + who });\n");
  writeFileSync(path.join(dir, 'events', 'greet.json'), JSON.stringify({ trigger: { '/greet': {} }, workers: { greet: {} } }));
  return dir;
}

describe('apps travel by replication', function () {
  this.timeout(60_000);
  const a = uniquePrefix();
  const b = uniquePrefix();
  const c = uniquePrefix();
  const runtimes: Runtime[] = [];
  let dir = '';
  after(async () => {
    for (const rt of runtimes) { await rt.stop(); rmSync(rt.config.dataDir, { recursive: true, force: true }); }
    if (dir) rmSync(dir, { recursive: true, force: true });
    for (const p of [a, b, c]) await dropPrefix(p);
  });

  it("CouchDB's _replicate carries events and workers (bundled dependencies included) to another store's runtime, which serves them unchanged", async () => {
    const nano = connect(couchUrl());
    await initStore(nano, { prefix: a });
    dir = appWithDependency();
    await deployDir(dir, nano.use(`${a}events`), nano.use(`${a}workers`));
    const rt = await startRuntime({ config: { dbPrefix: b } });
    runtimes.push(rt);
    for (const kind of ['workers', 'events']) {
      const res = await nano.request({ db: '_replicate', method: 'POST', body: { source: `${couchUrl()}/${a}${kind}`, target: `${couchUrl()}/${b}${kind}`, selector: { _id: { $regex: '^[^_]' } } } }) as { ok: boolean };
      expect(res.ok, kind).to.equal(true);
    }
    expect(await firstOutcome(rt, '/greet?wait=true')).to.deep.include({ status: 'ok', result: { text: 'hello, world' } });
    // What travelled is the document as deployed, revision and all.
    const [src, dst] = await Promise.all([nano.use(`${a}workers`).get('greet'), nano.use(`${b}workers`).get('greet')]);
    expect(dst._rev).to.equal(src._rev);
  });

  it('deploy --from does the same in one command, leaving the target\'s own design documents alone', async () => {
    const nano = connect(couchUrl());
    const rt = await startRuntime({ config: { dbPrefix: c } });
    runtimes.push(rt);
    const design = await nano.use(`${c}workers`).list({ startkey: '_design/', endkey: '_design0' });
    const report = await pullApp(nano, couchUrl(), couchUrl(), { prefix: c, fromPrefix: a });
    expect(report.map((r) => r.db)).to.deep.equal([`${c}workers`, `${c}events`]);
    expect(report.every((r) => r.docsWritten >= 1), JSON.stringify(report)).to.equal(true);
    expect(JSON.stringify(report)).to.not.contain(new URL(couchUrl()).password || 'no password');
    expect(await firstOutcome(rt, '/greet?wait=true')).to.deep.include({ status: 'ok', result: { text: 'hello, world' } });
    const after = await nano.use(`${c}workers`).list({ startkey: '_design/', endkey: '_design0' });
    expect(after.rows.map((r) => r.value.rev)).to.deep.equal(design.rows.map((r) => r.value.rev));
  });
});
