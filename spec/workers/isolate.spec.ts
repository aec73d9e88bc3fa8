import { expect } from 'chai';
import { IsolateDispatcher } from '../../src/workers/dispatch/isolate.ts';
import type { WorkerSpec } from '../../src/workers/revision.ts';
import { collectEmits, fixture, message, workerSpec } from '../fixtures/workers/process/specs.ts';

describe('IsolateDispatcher - workers in isolated-vm sandboxes', () => {
  let d: IsolateDispatcher;
  beforeEach(() => { d = new IsolateDispatcher(); });
  afterEach(async () => { await d.close(1000); });
  const run = (spec: WorkerSpec, params: Record<string, unknown> = {}, args: Record<string, unknown> = {}) => {
    const { emits, onEmit } = collectEmits();
    return d.dispatch({ spec, message: message(spec, params, args), onEmit }).then((o) => ({ ...o, emits }));
  };

  it('serves only type "isolate"', () => {
    expect(d.serves(workerSpec('isolate', 'echo.js'))).to.equal(true);
    expect(d.serves({ ...workerSpec('isolate', 'echo.js'), type: 'node' })).to.equal(false);
  });

  it('returns the handler result; emit reaches onEmit and log reaches the activation logs', async () => {
    const spec = workerSpec('isolate', 'echo.js', { attachments: {
      'echo.js': { contentType: 'text/javascript', data: fixture('isolate', 'echo.js') },
      'math.js': { contentType: 'text/javascript', data: fixture('isolate', 'math.js') },
    } });
    const o = await run(spec, { n: 21, emit: 'counted' }, { a: 1 });
    expect(o.status, JSON.stringify(o.error)).to.equal('ok');
    expect(o.result).to.deep.equal({ worker: spec.id, arguments: { a: 1 }, doubled: 42 });
    expect(o.emits).to.deep.equal([{ emit: 'counted', parameters: { n: 4 } }]);
    expect(o.logs).to.have.length(1);
    expect(o.logs[0]!.msg).to.match(/^handling act-\d+$/);
  });

  it('a flooding worker has its long line cut and the lines past 1,000 counted; the isolate keeps serving', async () => {
    const src = "module.exports = (msg, ctx) => { ctx.log('x'.repeat(100 * 1024)); for (let i = 0; i < 1100; i++) ctx.log('line ' + i); return msg.parameters.n; };";
    const spec = { ...workerSpec('isolate', 'echo.js'), id: 'w-flood', delegate: 'flood.js', attachments: { 'flood.js': { contentType: 'text/javascript', data: Buffer.from(src) } } };
    const o = await run(spec, { n: 1 });
    expect(o.status, JSON.stringify(o.error)).to.equal('ok');
    expect(o.result).to.equal(1);
    expect(o.logs).to.have.length(1001);
    expect(o.logs[0]!.msg).to.equal(`${'x'.repeat(64 * 1024)} … [line cut at ${64 * 1024} chars]`);
    expect(o.logs[1000]!.msg).to.equal('101 more log lines were not kept');
    expect((await run(spec, { n: 2 })).result).to.equal(2);
  });

  it('takes an ESM default export as the handler', async () => {
    const o = await run(workerSpec('isolate', 'esm.js'));
    expect(o.result).to.deep.equal({ esm: true, path: '/spec' });
  });

  it('a thrown error is an error outcome and the isolate keeps serving', async () => {
    const spec = workerSpec('isolate', 'thrower.js');
    const bad = await run(spec, { fail: true });
    expect(bad.status).to.equal('error');
    expect(bad.error!.code).to.equal('LC_WORKER_ERROR');
    expect(bad.error!.message).to.contain('refused on purpose');
    expect((await run(spec)).result).to.equal('fine');
  });

  it('a thrown error\'s stack names the attachment, line and column of each frame in the worker, and nothing of the sandbox', async () => {
    const src = (s: string) => ({ contentType: 'text/javascript', data: Buffer.from(s) });
    const spec: WorkerSpec = { ...workerSpec('isolate', 'thrower.js'), id: 'w-stacked', delegate: 'main.js', attachments: {
      'main.js': src("const util = require('./util.js');\n\nmodule.exports = async (msg) => {\n  await null;\n  return { n: util.check(Number(msg.parameters.n)) };\n};\n"),
      'util.js': src("exports.check = function check(n) {\n  if (n > 1) return n;\n  // not a valid count\n  throw new RangeError('n must be over 1, got ' + n);\n};\n"),
    } };
    const bad = await run(spec, { n: 0 });
    expect(bad.error!.message).to.contain('n must be over 1, got 0');
    const lines = bad.error!.stack!.split('\n');
    expect(lines[0]).to.equal('RangeError: n must be over 1, got 0');
    expect(lines[1]).to.match(new RegExp(`^\\s+at .*\\(${spec.id}/util\\.js:4:9\\)$`));
    expect(lines[2]).to.match(new RegExp(`^\\s+at .*\\(${spec.id}/main\\.js:5:\\d+\\)$`));
    expect(lines).to.have.length(3); // the prelude that called the handler is left out
    // A limit the runtime enforced has no stack of the worker's.
    expect((await run(workerSpec('isolate', 'loop.js', { limits: { timeout: 300 } }), { loop: 'sync' })).error).to.not.have.property('stack');
  });

  for (const loop of ['sync', 'async']) {
    it(`a ${loop} endless loop is stopped by the timeout and the next message works`, async () => {
      const spec = workerSpec('isolate', 'loop.js', { limits: { timeout: 500 } });
      const o = await run(spec, { loop });
      expect(o.status).to.equal('timeout');
      expect(o.error!.code).to.equal('LC_WORKER_TIMEOUT');
      const next = await run(spec);
      expect(next.status).to.equal('ok');
      expect(next.result).to.deep.equal({ ok: true });
    });
  }

  it('isolates are reused per revision; a memory blow-up is stopped and the isolate recreated', async () => {
    const spec = workerSpec('isolate', 'hog.js', { limits: { memory: 16 } });
    expect((await run(spec)).result).to.deep.equal({ served: 1 });
    expect((await run(spec)).result).to.deep.equal({ served: 2 });
    const o = await run(spec, { hog: true });
    expect(o.status).to.equal('error');
    expect(o.error!.code).to.equal('LC_WORKER_MEMORY');
    expect((await run(spec)).result).to.deep.equal({ served: 1 });
  });

  it('a new revision gets a new isolate', async () => {
    const spec = workerSpec('isolate', 'hog.js');
    await run(spec);
    expect((await run(spec)).result).to.deep.equal({ served: 2 });
    expect((await run({ ...spec, rev: spec.rev + '-next' })).result).to.deep.equal({ served: 1 });
  });

  it('importing a node builtin is a bundling error naming the file', async () => {
    const o = await run(workerSpec('isolate', 'builtin.js'));
    expect(o.status).to.equal('error');
    expect(o.error!.code).to.equal('LC_BUNDLE_FAILED');
    expect(o.error!.message).to.contain('builtin.js');
    expect(o.error!.message).to.contain("'fs'");
  });

  it('cannot reach process, require, fetch, files or the runtime: every attempt fails cleanly', async () => {
    const o = await run(workerSpec('isolate', 'escape.js'));
    expect(o.status, JSON.stringify(o.error)).to.equal('ok');
    const r = o.result as Record<string, unknown>;
    expect(r.process).to.match(/^failed: process is not defined/);
    expect(r.require).to.equal("failed: require('fs') is not available to isolate workers");
    expect(r.dynamicRequire).to.equal("failed: require('child_process') is not available to isolate workers");
    expect(r.fetch).to.match(/^failed: .*fetch is not a function/);
    expect(r.importFs).to.match(/^failed: /);
    expect(r.constructorEscape).to.match(/^failed: process is not defined/);
    expect(r.globals).to.deep.equal([]);
  });
});
