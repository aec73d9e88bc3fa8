import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ThreadDispatcher } from '../../src/workers/dispatch/thread.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { ThreadPool } from '../../src/workers/dispatch/thread/pool.ts';
import type { Bundle } from '../../src/workers/bundler.ts';
import type { WorkerOutcome } from '../../src/shared/message.ts';
import { fixtureSpec, inlineSpec, messageFor, run } from '../fixtures/workers/thread/index.ts';

/** A worker that misbehaves only when asked to, so its next message can show it works again. */
function faulty(id: string, fault: string, over = {}) {
  return inlineSpec(id, { 'main.js': `
    module.exports = async (m) => {
      if (m.parameters.fault) { ${fault} }
      return 'fine ' + m.parameters.n;
    };` }, over);
}

describe('ThreadDispatcher — faults end only the faulty work', function () {
  let dir: string;
  let d: ThreadDispatcher;
  const bystander = fixtureSpec('handler', 'main.js', { id: 'bystander' });
  before(() => { dir = mkdtempSync(path.join(os.tmpdir(), 'lc-thread-')); d = new ThreadDispatcher({ cacheDir: dir, threads: 1 }); });
  after(async () => { await d.close(1000); rmSync(dir, { recursive: true, force: true }); });

  /** The fault fails its message with this reason and the thrown error's stack, then the worker and a bystander work. */
  async function failsThenWorks(spec: ReturnType<typeof faulty>, message: string, stackHead: string) {
    const out = await run(d, spec, { fault: true });
    expect(out.status).to.equal('error');
    expect(out.error).to.deep.include({ code: 'LC_WORKER_ERROR', message });
    expect(out.error!.stack!.startsWith(stackHead + '\n')).to.equal(true, out.error!.stack);
    // The frame that threw, in the worker's own file (faulty() puts the fault on line 3).
    expect(out.error!.stack, out.error!.stack).to.match(new RegExp(`\\n\\s+at (.*\\()?${spec.id}/main\\.js:3:\\d+\\)?\\n`));
    await stillWorks(spec);
  }

  async function stillWorks(spec: ReturnType<typeof faulty>) {
    expect(await run(d, spec, { n: 2 })).to.include({ status: 'ok', result: 'fine 2' });
    expect((await run(d, bystander, { n: 4 })).result).to.deep.equal({ doubled: 8 });
  }

  it('a handler that throws fails its message with the error\'s message and stack; the next message works', async () => {
    const spec = faulty('invoicer', "throw new TypeError('no such invoice: ' + m.parameters.n);");
    const out = await run(d, spec, { fault: true, n: 7 });
    expect(out.status).to.equal('error');
    expect(out.error).to.deep.include({ code: 'LC_WORKER_ERROR' });
    expect(out.error!.message).to.contain('no such invoice: 7');
    expect(out.error!.stack).to.match(/^TypeError: no such invoice: 7\n\s+at /);
    await stillWorks(spec);
  });

  it('an endless loop hits the timeout and its thread is replaced', async () => {
    const spec = faulty('looper', 'for (;;) {}', { limits: { timeout: 300 } });
    const out = await run(d, spec, { fault: true });
    expect(out.status).to.equal('timeout');
    expect(out.error).to.deep.include({ code: 'LC_WORKER_TIMEOUT' });
    expect(out.error!.message).to.match(/'looper' did not finish within 300 ms/);
    await stillWorks(spec);
  });

  it('process.exit(1) ends that instance only, with the exit code in the reason', async () => {
    const spec = faulty('exiter', 'process.exit(1);');
    const out = await run(d, spec, { fault: true });
    expect(out.status).to.equal('error');
    expect(out.error).to.deep.equal({ code: 'LC_WORKER_EXIT', message: 'worker called process.exit(1)' });
    await stillWorks(spec);
  });

  it('an uncaught exception inside a setTimeout fails the message with its reason', async () => {
    const spec = faulty('thrower', "await new Promise(() => setTimeout(() => { throw new Error('boom in timer'); }, 10));");
    await failsThenWorks(spec, 'uncaught exception: boom in timer', 'Error: boom in timer');
  });

  it('an uncaught exception in a callback the worker does not own is traced to it by its stack, and reported once', async () => {
    const spec = faulty('fsthrower', "await new Promise(() => require('node:fs').stat('.', () => { throw new Error('boom in fs callback'); }));");
    // Node hands this error to 'uncaughtException' twice; the second must not be logged as another fault.
    const written: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: unknown, ...rest: unknown[]) => { written.push(String(chunk)); return (write as (...a: unknown[]) => boolean).call(process.stderr, chunk, ...rest); }) as typeof process.stderr.write;
    try {
      await failsThenWorks(spec, 'uncaught exception: boom in fs callback', 'Error: boom in fs callback');
    } finally {
      process.stderr.write = write;
    }
    expect(written.join('')).to.not.include('not attributable');
  });

  it('an unhandled rejection fails the message with its reason', async () => {
    const spec = faulty('rejecter', "Promise.reject(new Error('nobody catches me')); await new Promise((r) => setTimeout(r, 2000));");
    await failsThenWorks(spec, 'unhandled rejection: nobody catches me', 'Error: nobody catches me');
  });

  it('running out of memory gives an error naming the memory limit', async () => {
    const spec = faulty('hog', 'const keep = []; for (;;) keep.push(new Array(1e5).fill(Math.random()));', { limits: { memory: 32, timeout: 15_000 } });
    const out = await run(d, spec, { fault: true });
    expect(out.status).to.equal('error');
    expect(out.error!.code).to.equal('LC_WORKER_MEMORY');
    expect(out.error!.message).to.match(/ran out of memory \(limit 32 MB\) while running worker 'hog'/);
    await stillWorks(spec);
  });

  it('a thread that runs out of memory after its messages are done (a timer left running) is replaced, said in the log, and work goes on', async () => {
    const lines: string[] = [];
    const d2 = new ThreadDispatcher({ cacheDir: dir, threads: 1, logger: createLogger('warn', (l) => lines.push(l)) });
    try {
      const spec = inlineSpec('leaker', { 'main.js': `
        const keep = [];
        module.exports = async (m) => {
          if (m.parameters.leak) setInterval(() => { for (let i = 0; i < 200; i++) keep.push(new Array(1e4).fill(i)); }, 1);
          return 'answered ' + m.parameters.n;
        };` }, { limits: { memory: 32, timeout: 15_000, concurrency: 10, idle: 60_000 } });
      expect(await run(d2, spec, { leak: true, n: 1 })).to.include({ status: 'ok', result: 'answered 1' });
      for (let i = 0; i < 200 && !lines.some((l) => l.includes('worker thread ended holding no messages')); i++) await new Promise((r) => setTimeout(r, 50));
      const line = JSON.parse(lines.find((l) => l.includes('worker thread ended holding no messages'))!) as { level: string; reason: string; pool: number };
      expect(line).to.include({ level: 'warn', pool: 32 });
      expect(line.reason).to.match(/ran out of memory \(limit 32 MB\)/);
      expect(await run(d2, spec, { n: 2 })).to.include({ status: 'ok', result: 'answered 2' });
      expect((await run(d2, bystander, { n: 3 })).result).to.deep.equal({ doubled: 6 });
    } finally {
      await d2.close(1000);
    }
  });

  it('a worker that breaks how its thread reports (a toJSON on Object.prototype) costs that thread, not the runtime', async () => {
    // Every outcome of the thread then serializes to nothing.
    const tamper = faulty('tamperer', 'Object.prototype.toJSON = function () { return this.status === "ok" ? undefined : this; };');
    const out = await run(d, tamper, { fault: true });
    expect(out.status).to.equal('error');
    expect(out.error!.message).to.equal('stopped because the thread could not report: worker code changed how this thread turns objects into JSON; it was replaced');
    // A new thread, where the prototype is untouched.
    await stillWorks(tamper);
  });

  it('a worker that breaks how its thread joins its report (Array.prototype.join) costs that thread, not the runtime', async () => {
    const joiner = faulty('joiner', 'Array.prototype.join = function () { return "not json"; };');
    const out = await run(d, joiner, { fault: true });
    expect(out.status).to.equal('error');
    expect(out.error!.message).to.match(/^stopped because the thread sent a report that could not be read \(.*JSON.*\); it was replaced$/);
    await stillWorks(joiner);
  });

  it("does not blame other workers for a timeout: started ones fail naming the cause, unstarted ones run again", async () => {
    const slow = inlineSpec('slowpoke', { 'main.js': "module.exports = () => new Promise((r) => setTimeout(() => r('slow done'), 3000));" });
    const looper = faulty('looper2', 'for (;;) {}', { limits: { timeout: 400 } });
    const started = run(d, slow);
    await new Promise((r) => setTimeout(r, 100));
    const looping = run(d, looper, { fault: true });
    await new Promise((r) => setTimeout(r, 100));
    // Reaches the thread while it loops, so it never starts there.
    const waiting = run(d, bystander, { n: 5 });
    const [a, b, c] = await Promise.all([started, looping, waiting]);
    expect(b.status).to.equal('timeout');
    expect(a.status).to.equal('error');
    expect(a.error!.message).to.equal("stopped because worker 'looper2' timed out");
    expect(c).to.deep.include({ status: 'ok', result: { doubled: 10 } });
  });

  it('a real exit of the thread (through the real process object) names the worker in every message it fails', async () => {
    const slow = inlineSpec('patient', { 'main.js': "module.exports = () => new Promise((r) => setTimeout(() => r('patient done'), 3000));" });
    for (const [id, how] of [['realexit', 'Object.getPrototypeOf(process).reallyExit(7);'], ['realexit2', 'Object.getPrototypeOf(process).exit(7);']] as const) {
      const quitter = faulty(id, how);
      const started = [run(d, slow), run(d, slow)];
      await new Promise((r) => setTimeout(r, 150));
      const own = await run(d, quitter, { fault: true });
      const others = await Promise.all(started);
      expect(own.status).to.equal('error');
      expect(own.error).to.deep.include({ code: 'LC_WORKER_EXIT' });
      expect(own.error!.message).to.equal(`stopped because worker '${id}' ended its thread (exit code 7)`);
      for (const o of others) {
        expect(o.status).to.equal('error');
        expect(o.error!.message).to.equal(`stopped because worker '${id}' ended its thread (exit code 7)`);
      }
      await stillWorks(quitter);
    }
  });

  it('Buffers and ArrayBuffers count against a thread worker\'s memory: holding more fails it with LC_WORKER_MEMORY, naming it', async () => {
    const spec = faulty('bufferhog', "globalThis.held = []; for (let i = 0; i < 40; i++) { globalThis.held.push(Buffer.alloc(8 * 1024 * 1024, 1)); await new Promise((r) => setTimeout(r, 20)); }",
      { limits: { memory: 64, timeout: 15_000, concurrency: 1, idle: 60_000 } });
    const out = await run(d, spec, { fault: true });
    expect(out.status).to.equal('error');
    expect(out.error!.code).to.equal('LC_WORKER_MEMORY');
    expect(out.error!.message).to.match(/^the thread ran out of memory \(\d+ MB of Buffers and ArrayBuffers, limit 64 MB\) while running worker 'bufferhog'$/);
    await stillWorks(spec);
  });

  it('a worker with no memory limit is held by the runtime-wide external memory guard', async () => {
    const d2 = new ThreadDispatcher({ cacheDir: dir, threads: 1, externalMb: 48 });
    try {
      const spec = faulty('unbounded', "const held = []; for (let i = 0; i < 40; i++) { held.push(new ArrayBuffer(8 * 1024 * 1024)); new Uint8Array(held[i]).fill(1); await new Promise((r) => setTimeout(r, 20)); }",
        { limits: { timeout: 15_000, concurrency: 1, idle: 60_000 } });
      const out = await run(d2, spec, { fault: true });
      expect(out.error!.code).to.equal('LC_WORKER_MEMORY');
      expect(out.error!.message).to.match(/limit 48 MB\) while running worker 'unbounded'$/);
      expect(await run(d2, spec, { n: 3 })).to.include({ status: 'ok', result: 'fine 3' });
    } finally {
      await d2.close(1000);
    }
  });

  it('a worker that takes memory in one synchronous run meets the runtime-wide memory guard', async () => {
    const d2 = new ThreadDispatcher({ cacheDir: dir, threads: 1, maxRssMb: Math.round(process.memoryUsage.rss() / 1048576) + 200 });
    try {
      const spec = faulty('synchog', "const held = []; for (let i = 0; i < 60; i++) held.push(Buffer.alloc(8 * 1024 * 1024, 1)); const until = Date.now() + 5000; while (Date.now() < until);",
        { limits: { timeout: 15_000, concurrency: 1, idle: 60_000 } });
      const out = await run(d2, spec, { fault: true });
      expect(out.error!.code).to.equal('LC_WORKER_MEMORY');
      expect(out.error!.message).to.match(/^the runtime reached \d+ MB of memory \(guard \d+ MB\) while running worker 'synchog'$/);
      expect(await run(d2, spec, { n: 4 })).to.include({ status: 'ok', result: 'fine 4' });
    } finally {
      await d2.close(1000);
    }
  });

  it('threads that cannot start fail the messages waiting for them, with the reason, instead of holding them', async () => {
    const entry = path.join(dir, 'broken-runtime.mjs');
    writeFileSync(entry, "throw new Error('the thread runtime is broken');\n");
    const lines: string[] = [];
    const pool = new ThreadPool({ entry, threads: 1, tasksPerThread: 4, maxBatch: 8, externalMb: 1024, moduleRoot: process.cwd(), channel: 'lc-spec-broken', logger: createLogger('warn', (l) => lines.push(l)) });
    try {
      const spec = inlineSpec('never', { 'main.js': 'module.exports = () => 1;' });
      const send = () => new Promise<WorkerOutcome>((resolve) => pool.enqueue({
        id: Math.random(), spec, bundle: { key: 'never@1', file: entry } as Bundle, message: messageFor(spec), env: {}, onEmit() {}, resolve,
        t0: performance.now(), attempts: 0, done: false, index: 0, deadline: 0,
      }));
      const first = await send();
      expect(first.status).to.equal('error');
      expect(first.error!.code).to.equal('LC_WORKER_ERROR');
      expect(first.error!.message).to.match(/^the worker threads could not start: .*the thread runtime is broken/);
      // Later messages fail at once too, and the log says why.
      expect((await send()).error!.message).to.equal(first.error!.message);
      expect(lines.some((l) => l.includes('worker threads could not start') && l.includes('the thread runtime is broken'))).to.equal(true);
    } finally {
      await pool.destroy();
    }
  });
});
