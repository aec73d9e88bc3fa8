import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { ThreadDispatcher } from '../../src/workers/dispatch/thread.ts';
import { fixtureSpec, inlineSpec, run } from '../fixtures/workers/thread/index.ts';
import { couchUrl, dropPrefix, uniquePrefix } from '../support/couch.ts';

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
  expect(cond(), what).to.equal(true);
}

/** A stdin-style worker that answers with `tag` and records its stdin end in a file. */
const marking = (tag: string) => `
  const fs = require('node:fs');
  process.stdin.on('data', () => console.log(JSON.stringify({ result: '${tag}' })));
  process.stdin.on('end', () => fs.writeFileSync(process.env.MARK, 'ended ${tag}'));`;

describe('ThreadDispatcher — the pool and the process around it', function () {
  it('status counts the batches sent and the share of thread time spent on them', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lc-thread-'));
    const d = new ThreadDispatcher({ cacheDir: dir, threads: 2 });
    try {
      const busy = inlineSpec('busy', { 'main.js': 'module.exports = () => new Promise((r) => setTimeout(() => r("rested"), 200));' });
      const outs = await Promise.all(Array.from({ length: 4 }, () => run(d, busy)));
      expect(outs.map((o) => o.result)).to.deep.equal(['rested', 'rested', 'rested', 'rested']);
      const s = d.stats();
      expect(s.batches).to.be.within(1, 4);
      expect(s.inFlight).to.equal(0);
      // At least 200 ms of one thread's time held messages, out of well under two seconds of two threads.
      expect(s.utilization).to.be.greaterThan(0.05).and.at.most(1);
    } finally {
      await d.close(1000);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an idle pool does not keep its process alive: a script that dispatches once and never closes exits', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lc-thread-'));
    const script = `
      import { ThreadDispatcher } from ${JSON.stringify(path.resolve('src/workers/dispatch/thread.ts'))};
      import { inlineSpec, run } from ${JSON.stringify(path.resolve('spec/fixtures/workers/thread/index.ts'))};
      const d = new ThreadDispatcher({ cacheDir: ${JSON.stringify(dir)}, threads: 2 });
      const out = await run(d, inlineSpec('once', { 'main.js': 'module.exports = () => "once";' }));
      console.log(out.result);`;
    const child = spawn(process.execPath, ['--no-node-snapshot', '--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (c) => { out += c; });
    const code = await new Promise<number | null>((resolve) => {
      const t = setTimeout(() => { child.kill('SIGKILL'); resolve(null); }, 15_000);
      child.once('exit', (c) => { clearTimeout(t); resolve(c); });
    });
    rmSync(dir, { recursive: true, force: true });
    expect(out.trim()).to.equal('once');
    expect(code, 'the process exited by itself').to.equal(0);
  });
});

describe('ThreadDispatcher — lifecycle, bundling, cache, database', function () {
  let dir: string;
  let d: ThreadDispatcher;
  before(() => { dir = mkdtempSync(path.join(os.tmpdir(), 'lc-thread-')); d = new ThreadDispatcher({ cacheDir: dir, threads: 2, couchUrl: couchUrl() }); });
  after(async () => { await d.close(1000); rmSync(dir, { recursive: true, force: true }); });

  it('a new revision changes the result and the old instance sees stdin end', async () => {
    const mark = path.join(dir, 'retired');
    const v1 = inlineSpec('editable', { 'main.js': marking('v1') }, { env: { MARK: mark } });
    expect((await run(d, v1)).result).to.equal('v1');
    const v2 = inlineSpec('editable', { 'main.js': marking('v2') }, { env: { MARK: path.join(dir, 'unused') } });
    await d.retire(v2.id, v2.rev);
    expect((await run(d, v2)).result).to.equal('v2');
    await until(() => existsSync(mark), 'old instance saw stdin end');
    expect(readFileSync(mark, 'utf8')).to.equal('ended v1');
  });

  it('an instance unused for its idle limit gets stdin end and is dropped', async () => {
    const mark = path.join(dir, 'idle');
    const spec = inlineSpec('idler', { 'main.js': marking('idle') }, { env: { MARK: mark }, limits: { idle: 100 } as never });
    expect((await run(d, spec)).result).to.equal('idle');
    await until(() => existsSync(mark), 'idle instance saw stdin end');
    expect((await run(d, spec)).result, 'a fresh instance serves the next message').to.equal('idle');
  });

  it('a syntax error gives LC_BUNDLE_FAILED naming file and line', async () => {
    const out = await run(d, fixtureSpec('bad_syntax', 'main.js'));
    expect(out.status).to.equal('error');
    expect(out.error!.code).to.equal('LC_BUNDLE_FAILED');
    expect(out.error!.message).to.match(/main\.js:2:\d+: Expected "\}" but found ";"/);
  });

  it('a missing relative module gives LC_BUNDLE_FAILED naming the file that requires it', async () => {
    const out = await run(d, fixtureSpec('missing_module', 'main.js'));
    expect(out.error!.code).to.equal('LC_BUNDLE_FAILED');
    expect(out.error!.message).to.match(/main\.js:1:\d+: cannot find module '\.\/not-attached\.js'/);
  });

  it('a worker requiring nano talks to the runtime\'s CouchDB', async () => {
    const db = `${uniquePrefix()}inbox`;
    const spec = inlineSpec('couchy', { 'main.js': `
      const nano = require('nano');
      module.exports = async (m, ctx) => {
        const server = nano(process.env.COUCHDB_URL);
        await server.db.create(m.parameters.db);
        await server.use(m.parameters.db).insert({ _id: 'hello', from: 'worker' });
        const doc = await ctx.couch.use(m.parameters.db).get('hello');
        return doc.from;
      };` }, { couch: true });
    try {
      expect(await run(d, spec, { db })).to.deep.include({ status: 'ok', result: 'worker' });
    } finally { await dropPrefix(db.slice(0, db.indexOf('_') + 1)); }
  });

  it('a worker without "couch": true gets no database client', async () => {
    const spec = inlineSpec('nocouch', { 'main.js': 'module.exports = (m, ctx) => ctx.couch;' });
    const out = await run(d, spec);
    expect(out.error!.message).to.match(/set "couch": true/);
  });

  it('a new dispatcher reuses the bundles on disk instead of rebundling', async () => {
    const spec = fixtureSpec('handler', 'main.js', { id: 'cached' });
    expect((await run(d, spec, { n: 1 })).status).to.equal('ok');
    const again = new ThreadDispatcher({ cacheDir: dir, threads: 1 });
    try {
      expect((await run(again, spec, { n: 3 })).result).to.deep.equal({ doubled: 6 });
      expect(again.bundler.stats()).to.include({ built: 0, fromDisk: 1 });
    } finally { await again.close(1000); }
  });
});
