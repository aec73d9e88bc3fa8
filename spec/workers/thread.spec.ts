import { expect } from 'chai';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ThreadDispatcher } from '../../src/workers/dispatch/thread.ts';
import type { EmitCommand } from '../../src/shared/message.ts';
import { fixtureSpec, inlineSpec, run } from '../fixtures/workers/thread/index.ts';


describe('ThreadDispatcher — worker styles', function () {
  let dir: string;
  let d: ThreadDispatcher;
  before(() => { dir = mkdtempSync(path.join(os.tmpdir(), 'lc-thread-')); d = new ThreadDispatcher({ cacheDir: dir, threads: 2 }); });
  after(async () => { await d.close(1000); rmSync(dir, { recursive: true, force: true }); });

  it('serves node workers in threads, not process isolation or other types', () => {
    expect(d.serves(fixtureSpec('handler', 'main.js'))).to.equal(true);
    expect(d.serves(fixtureSpec('handler', 'main.js', { isolation: 'process' }))).to.equal(false);
    expect(d.serves(fixtureSpec('handler', 'main.js', { type: 'python' }))).to.equal(false);
  });

  it("runs the seed's send_email shape: reads recipient from stdin and calls into someOtherScript.js", async () => {
    const spec = fixtureSpec('send_email', 'sendmail.js', { arguments: { recipient: 'support@yourcompany.com' } });
    const out = await run(d, spec);
    expect(out.status, JSON.stringify(out)).to.equal('ok');
    expect(out.result).to.equal('mail for support@yourcompany.com composed by someOtherScript.js');
    expect(out.logs.map((l) => l.msg)).to.include('sending mail to support@yourcompany.com');
    const again = await run(d, spec);
    expect(again.result).to.equal(out.result);
  });

  it('runs an exported handler with ctx.log and ctx.emit', async () => {
    const emits: EmitCommand[] = [];
    const spec = fixtureSpec('handler', 'main.js');
    const out = await run(d, spec, { n: 21 }, emits);
    expect(out.status).to.equal('ok');
    expect(out.result).to.deep.equal({ doubled: 42 });
    expect(out.logs[0]!.msg).to.match(/^handling act-/);
    expect(emits).to.deep.equal([{ emit: 'handled', parameters: { n: 21 } }]);
  });

  it('runs an ESM default export that imports another module and a JSON attachment', async () => {
    const out = await run(d, fixtureSpec('esm_default', 'main.mjs'), { name: 'couch' });
    expect(out).to.include({ status: 'ok', result: 'hello couch!' });
  });

  it('sees a stdin-style worker answering after a 50 ms timer as done after its answer', async () => {
    const out = await run(d, fixtureSpec('stdin_timer', 'main.js'), { n: 7 });
    expect(out.status).to.equal('ok');
    expect(out.logs.map((l) => l.msg)).to.deep.equal(['answered 7']);
    // Its duration counts the wait, to the microsecond (short in JSON).
    expect(out.durationMs).to.be.at.least(45);
    expect(String(out.durationMs)).to.match(/^\d+(\.\d{1,3})?$/);
  });

  it('takes stdout command lines: emit, log with level, result', async () => {
    const spec = inlineSpec('lines', { 'main.js': `
      process.stdin.on('data', (l) => {
        console.log(JSON.stringify({ emit: 'sent', parameters: { to: 'x' } }));
        console.log(JSON.stringify({ log: 'careful', level: 'warn' }));
        console.error('on stderr');
        console.log(JSON.stringify({ result: { ok: 1 } }));
      });` });
    const emits: EmitCommand[] = [];
    const out = await run(d, spec, {}, emits);
    expect(out.result).to.deep.equal({ ok: 1 });
    expect(emits).to.deep.equal([{ emit: 'sent', parameters: { to: 'x' } }]);
    expect(out.logs.map((l) => [l.level, l.msg])).to.deep.equal([['warn', 'careful'], ['error', 'on stderr']]);
  });

  it('gives each instance its own argv and env, and the helper API from livelycouch/worker', async () => {
    const spec = inlineSpec('envy', { 'main.js': `
      const { emit, log } = require('livelycouch/worker');
      module.exports = () => { log('via helper'); emit('noted'); return { argv1: process.argv[1], mine: process.env.MINE, worker: process.env.LIVELY_WORKER }; };` },
    { env: { MINE: 'yes' } });
    const emits: EmitCommand[] = [];
    const out = await run(d, spec, {}, emits);
    expect(out.result).to.deep.equal({ argv1: 'main.js', mine: 'yes', worker: 'envy' });
    expect(out.logs.map((l) => l.msg)).to.deep.equal(['via helper']);
    expect(emits).to.deep.equal([{ emit: 'noted', parameters: {} }]);
  });

  it('refuses a dynamic require of a relative path at run time', async () => {
    const spec = inlineSpec('dynreq', { 'main.js': `module.exports = (m) => { const p = './' + m.parameters.f; return require(p); };` });
    const out = await run(d, spec, { f: 'x.js' });
    expect(out.status).to.equal('error');
    expect(out.error!.message).to.match(/cannot require '\.\/x\.js' at run time/);
  });

  it('a flooding worker has its long line cut and the lines past 1,000 counted; its result and the next message still work', async () => {
    const spec = inlineSpec('flooder', { 'main.js': `
      module.exports = (msg, ctx) => {
        console.log('x'.repeat(100 * 1024));
        ctx.log('y'.repeat(100 * 1024));
        for (let i = 0; i < 1200; i++) ctx.log('line ' + i);
        process.stdout.write('stdout line\\n');
        return { flooded: msg.parameters.n };
      };` });
    const out = await run(d, spec, { n: 1 });
    expect(out.status, JSON.stringify(out.error)).to.equal('ok');
    expect(out.result).to.deep.equal({ flooded: 1 });
    expect(out.logs).to.have.length(1001);
    // console output, cut by its line splitter, and a ctx.log line, cut where it is logged
    expect(out.logs[0]).to.include({ level: 'warn', msg: `${'x'.repeat(64 * 1024)} … [line cut at ${64 * 1024} chars]` });
    expect(out.logs[1]).to.include({ level: 'info', msg: `${'y'.repeat(64 * 1024)} … [line cut at ${64 * 1024} chars]` });
    expect(out.logs[999]!.msg).to.equal('line 997');
    expect(out.logs[1000]).to.include({ level: 'warn', msg: '203 more log lines were not kept' });
    const next = await run(d, spec, { n: 2 });
    expect(next.result).to.deep.equal({ flooded: 2 });
    expect(next.logs).to.have.length(1001);
  });

  it('handles many concurrent messages of one worker and keeps them apart', async () => {
    const spec = fixtureSpec('handler', 'main.js', { id: 'many' });
    const outs = await Promise.all(Array.from({ length: 200 }, (_, n) => run(d, spec, { n })));
    expect(outs.map((o) => (o.result as { doubled: number }).doubled)).to.deep.equal(Array.from({ length: 200 }, (_, n) => n * 2));
  });
});

describe('ThreadDispatcher — stacks name the files the worker is made of', function () {
  let dir: string;
  before(() => { dir = mkdtempSync(path.join(os.tmpdir(), 'lc-thread-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const twoFiles = () => inlineSpec('mapped', {
    'main.js': "const util = require('./util.js');\nmodule.exports = async (m) => {\n  return util.check(m.parameters.n);\n};\n",
    'util.js': "exports.check = (n) => {\n  // a comment, so that lines differ from the bundle's\n  if (n > 1) return n;\n  throw new RangeError('n must be over 1, got ' + n);\n};\n",
  });

  it('an error thrown across two attachments shows each frame at its attachment, line and column, and no frame of the runtime', async () => {
    const d = new ThreadDispatcher({ cacheDir: dir, threads: 1 });
    try {
      const out = await run(d, twoFiles(), { n: 0 });
      expect(out.status).to.equal('error');
      const lines = out.error!.stack!.split('\n');
      expect(lines[0]).to.equal('RangeError: n must be over 1, got 0');
      expect(lines[1]).to.match(/^\s+at .*\(mapped\/util\.js:4:9\)$/);
      expect(lines[2]).to.match(/^\s+at .*\(mapped\/main\.js:3:15\)$/);
      expect(out.error!.stack).to.not.match(/livelycouch-worker:|thread-runtime/);
    } finally {
      await d.close(1000);
    }
  });

  it('a bundle cached without its map (or with an unreadable one) still runs, and its stacks keep the bundle\'s frames', async () => {
    const spec = twoFiles();
    const first = new ThreadDispatcher({ cacheDir: dir, threads: 1 });
    try { expect(await run(first, spec, { n: 2 })).to.include({ status: 'ok', result: 2 }); } finally { await first.close(1000); }
    for (const name of readdirSync(dir)) if (name.endsWith('.cjs.map')) writeFileSync(path.join(dir, name), '{ not json');
    const d = new ThreadDispatcher({ cacheDir: dir, threads: 1 });
    try {
      const out = await run(d, spec, { n: 0 });
      expect(out.error!.message).to.equal('n must be over 1, got 0');
      expect(out.error!.stack).to.match(/\n\s+at .*livelycouch-worker:\/\/\/mapped[^:]*:\d+:\d+\)/);
      expect(await run(d, spec, { n: 5 })).to.include({ status: 'ok', result: 5 });
    } finally {
      await d.close(1000);
    }
  });
});

describe('ThreadDispatcher — a worker that replaces its thread\'s globals', function () {
  it('keeps the runtime reporting, and other workers on the thread their timers', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lc-thread-'));
    // One thread: the worker that breaks the globals and the one after it share it.
    const d = new ThreadDispatcher({ cacheDir: dir, threads: 1 });
    const limits = { ...fixtureSpec('handler', 'main.js').limits, timeout: 3000 };
    try {
      const breaker = inlineSpec('global_breaker', { 'main.js': `
        globalThis.setImmediate = () => {};
        globalThis.setTimeout = () => {};
        JSON.stringify = () => '{';
        module.exports = async () => ({ replaced: typeof globalThis.setImmediate });` }, { limits });
      const waiter = inlineSpec('timer_user', { 'main.js': `
        module.exports = async (m, ctx) => { await new Promise((r) => setTimeout(r, 20)); ctx.emit('waited', { ms: 20 }); return 'waited'; };` }, { limits });
      const emits: EmitCommand[] = [];
      expect(await run(d, breaker)).to.deep.include({ status: 'ok', result: { replaced: 'function' } });
      const after = await run(d, waiter, {}, emits);
      expect(after, JSON.stringify(after)).to.include({ status: 'ok', result: 'waited' });
      expect(emits).to.deep.equal([{ emit: 'waited', parameters: { ms: 20 } }]);
    } finally {
      await d.close(1000);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('ThreadDispatcher — results and emits with no plain JSON form', function () {
  let dir: string;
  let d: ThreadDispatcher;
  before(() => { dir = mkdtempSync(path.join(os.tmpdir(), 'lc-thread-')); d = new ThreadDispatcher({ cacheDir: dir, threads: 1 }); });
  after(async () => { await d.close(1000); rmSync(dir, { recursive: true, force: true }); });

  it('a result holding a function arrives as its JSON form; a plain one as it is', async () => {
    const odd = inlineSpec('odd_result', { 'main.js': 'module.exports = async () => ({ n: 2, f: () => 1, when: new Date(0) });' });
    const out = await run(d, odd);
    expect(out.status, JSON.stringify(out)).to.equal('ok');
    expect(out.result).to.deep.equal({ n: 2, when: '1970-01-01T00:00:00.000Z' });
    const plain = inlineSpec('plain_result', { 'main.js': 'module.exports = async () => ({ list: [1, "a", null, { deep: true }] });' });
    expect((await run(d, plain)).result).to.deep.equal({ list: [1, 'a', null, { deep: true }] });
  });

  it('a result that has no JSON form either fails the activation with a reason, and the worker works on', async () => {
    const bad = inlineSpec('bigint_fn', { 'main.js': 'let n = 0; module.exports = async () => (n++ === 0 ? { f: () => 1, big: 10n } : { ok: n });' });
    const out = await run(d, bad);
    expect(out.status).to.equal('error');
    expect(out.error!.message).to.contain('result cannot be sent');
    expect((await run(d, bad)).result).to.deep.equal({ ok: 2 });
  });

  it('a rejection or a timer throwing a value that is not an Error still gives its reason', async () => {
    const rejects = inlineSpec('rejects_symbol', { 'main.js': 'module.exports = async () => Promise.reject(Symbol("nope"));' });
    expect((await run(d, rejects)).error).to.include({ code: 'LC_WORKER_ERROR', message: 'Symbol(nope)' });
    const throws = inlineSpec('timer_throws_undefined', { 'main.js': 'module.exports = () => new Promise(() => { setTimeout(() => { throw undefined; }, 1); });' });
    expect((await run(d, throws)).error!.message).to.equal('uncaught exception: undefined');
  });

  it('an emit whose parameters have no JSON form throws to the worker; the worker sharing its thread and its next message are not touched', async () => {
    // Both messages land on the one thread together: what goes up for one must not take the other with it.
    const limits = { ...fixtureSpec('handler', 'main.js').limits, timeout: 3000 };
    const bad = inlineSpec('bad_emit', { 'main.js': `let n = 0; module.exports = async (m, ctx) => {
      if (n++ === 0) ctx.emit('cyclic', { self: globalThis });
      ctx.emit('plain', { k: n, f: () => 1 });
      return n;
    };` }, { limits });
    const good = inlineSpec('good_neighbour', { 'main.js': 'module.exports = async (m, ctx) => { ctx.emit("fine", { x: 1 }); return "ok"; };' }, { limits });
    const badEmits: EmitCommand[] = [];
    const goodEmits: EmitCommand[] = [];
    const [first, neighbour] = await Promise.all([run(d, bad, {}, badEmits), run(d, good, {}, goodEmits)]);
    expect(first.status, JSON.stringify(first)).to.equal('error');
    expect(first.error!.message).to.match(/^emit\("cyclic"\): its parameters cannot be sent as JSON: .*circular/i);
    expect(neighbour, JSON.stringify(neighbour)).to.include({ status: 'ok', result: 'ok' });
    expect(goodEmits).to.deep.equal([{ emit: 'fine', parameters: { x: 1 } }]);
    // Its next message emits what JSON can carry (the function left out, as JSON leaves it).
    expect((await run(d, bad, {}, badEmits)).result).to.equal(2);
    expect(badEmits).to.deep.equal([{ emit: 'plain', parameters: { k: 2 } }]);
  });
});
