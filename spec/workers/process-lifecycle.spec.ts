import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { kDefaultInterpreters } from '../../src/config/index.ts';
import { ProcessDispatcher } from '../../src/workers/dispatch/process.ts';
import { alive, gone, message, workerSpec } from '../fixtures/workers/process/specs.ts';

const runtimeScript = fileURLToPath(new URL('../fixtures/workers/process/runtime.ts', import.meta.url));
const watchdogCloseScript = fileURLToPath(new URL('../fixtures/workers/process/watchdog-close.ts', import.meta.url));
const watchdogStuckScript = fileURLToPath(new URL('../fixtures/workers/process/watchdog-stuck.ts', import.meta.url));

describe('ProcessDispatcher - lifecycle', () => {
  let dataDir: string;
  beforeEach(() => { dataDir = mkdtempSync(path.join(os.tmpdir(), 'lively-process-life-')); });
  afterEach(() => { rmSync(dataDir, { recursive: true, force: true }); });
  const make = (over: Partial<ConstructorParameters<typeof ProcessDispatcher>[0]> = {}) =>
    new ProcessDispatcher({ interpreters: kDefaultInterpreters, dataDir, killGraceMs: 300, ...over });

  it('closes stdin after idle and the process exits', async () => {
    const d = make();
    try {
      const spec = workerSpec('python', 'echo.py', { limits: { idle: 100 } });
      const o = await d.dispatch({ spec, message: message(spec), onEmit: () => {} });
      const pid = (o.result as { pid: number }).pid;
      expect(await gone(pid)).to.equal(true);
      expect(d.stats().warm).to.equal(0);
    } finally { await d.close(1000); }
  });

  it('kills a process that ignores the end of its stdin and SIGTERM (SIGKILL after the grace period)', async () => {
    const d = make();
    try {
      const spec = workerSpec('python', 'stubborn.py', { limits: { idle: 50 } });
      const o = await d.dispatch({ spec, message: message(spec), onEmit: () => {} });
      expect(o.status).to.equal('ok');
      expect(await gone((o.result as { pid: number }).pid)).to.equal(true);
    } finally { await d.close(1000); }
  });

  it('retirement lets the in-flight message finish before the process goes', async () => {
    const d = make();
    try {
      const spec = workerSpec('python', 'slow.py');
      await d.dispatch({ spec, message: message(spec, { ms: 0 }), onEmit: () => {} });
      const pending = d.dispatch({ spec, message: message(spec, { ms: 300 }), onEmit: () => {} });
      await new Promise((r) => setTimeout(r, 50));
      const retired = d.retire(spec.id);
      const o = await pending;
      expect(o.status).to.equal('ok');
      await retired;
      expect(alive((o.result as { pid: number }).pid)).to.equal(false);
      expect(d.stats().warm).to.equal(0);
    } finally { await d.close(1000); }
  });

  it('a revision retired and needed again at once starts in a complete directory (the old pool\'s removal is waited for)', async () => {
    // a changed secret retires a worker's processes while its revision stays the same: the next
    // message starts a new pool of that revision while the old pool is still removing its files
    const d = make();
    try {
      const spec = workerSpec('sh', 'echo.sh');
      const failed: string[] = [];
      for (let i = 0; i < 20; i++) {
        const o = await d.dispatch({ spec, message: message(spec), onEmit: () => {} });
        if (o.status !== 'ok') failed.push(o.error?.message ?? o.status);
        await d.retire(spec.id);
      }
      expect(failed).to.deep.equal([]);
    } finally { await d.close(1000); }
  });

  it('close(deadline) lets in-flight messages finish, then the processes are gone', async () => {
    const d = make();
    const spec = workerSpec('python', 'slow.py', { limits: { concurrency: 2 } });
    const warm = await d.dispatch({ spec, message: message(spec, { ms: 0 }), onEmit: () => {} });
    expect(warm.result, JSON.stringify(warm)).to.have.property('pid');
    const inflight = [1, 2].map(() => d.dispatch({ spec, message: message(spec, { ms: 400 }), onEmit: () => {} }));
    await new Promise((r) => setTimeout(r, 100));
    await d.close(5000);
    const outs = await Promise.all(inflight);
    expect(outs.map((o) => o.status)).to.deep.equal(['ok', 'ok']);
    const pids = outs.map((o) => (o.result as { pid: number }).pid);
    expect(pids).to.include((warm.result as { pid: number }).pid);
    for (const pid of pids) expect(alive(pid)).to.equal(false);
  });

  it('close(deadline) kills what is still running at the deadline and says so in the outcome', async () => {
    const d = make();
    const spec = workerSpec('python', 'slow.py');
    await d.dispatch({ spec, message: message(spec, { ms: 0 }), onEmit: () => {} });
    const inflight = d.dispatch({ spec, message: message(spec, { ms: 60_000 }), onEmit: () => {} });
    await new Promise((r) => setTimeout(r, 100));
    await d.close(200);
    const o = await inflight;
    expect(o.status).to.equal('error');
    expect(o.error!.code).to.equal('LC_WORKER_RETIRED');
  });

  it('SIGKILL of the runtime leaves no worker process behind (the watchdog kills its group)', async function () {
    this.timeout(30_000);
    const rt = spawn(process.execPath, ['--import', 'tsx', runtimeScript, dataDir], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: rt.stdout! }).once('line', resolve);
        rt.once('exit', () => reject(new Error('runtime fixture exited before its worker started')));
      });
      const [workerPid, watchdogPid] = line.split(' ').map(Number) as [number, number];
      expect(alive(workerPid)).to.equal(true);
      rt.kill('SIGKILL');
      expect(await gone(workerPid)).to.equal(true);
      expect(await gone(watchdogPid)).to.equal(true);
    } finally {
      rt.kill('SIGKILL');
    }
  });

  it('closing the watchdog waits for it to clean up, even when nothing else keeps the runtime alive', async function () {
    this.timeout(30_000);
    const rt = spawn(process.execPath, ['--import', 'tsx', watchdogCloseScript], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    rt.stdout!.setEncoding('utf8').on('data', (s: string) => { out += s; });
    const code = await new Promise<number | null>((resolve) => rt.once('close', resolve));
    // Before the fix the process ran out of work while waiting and exited (13: an unsettled
    // top-level await, or 0 in a script) without finishing its close.
    expect(code).to.equal(0);
    const m = /^closed (\d+)$/m.exec(out);
    expect(m, `output: ${JSON.stringify(out)}`).to.not.equal(null);
    expect(await gone(Number(m![1]))).to.equal(true);
  });

  it('a watchdog that does not exit when closed (stopped here) is killed a second after its grace period', async function () {
    this.timeout(30_000);
    const rt = spawn(process.execPath, ['--import', 'tsx', watchdogStuckScript], { stdio: ['pipe', 'pipe', 'inherit'] });
    let watchdogPid = 0;
    try {
      const lines = createInterface({ input: rt.stdout! });
      watchdogPid = Number(await new Promise<string>((resolve) => lines.once('line', resolve)));
      expect(alive(watchdogPid)).to.equal(true);
      process.kill(watchdogPid, 'SIGSTOP');
      const t0 = Date.now();
      // Bounded, so that a failure still reaches the finally below: a stand-in left waiting on a
      // stopped watchdog would hold mocha's output open.
      const closed = new Promise<string>((resolve) => {
        lines.once('line', resolve);
        setTimeout(() => resolve('still waiting after 10 s'), 10_000).unref();
      });
      rt.stdin!.write('close\n');
      expect(await closed).to.equal('closed');
      expect(Date.now() - t0).to.be.at.least(1_000); // not killed before its grace period and a second
      expect(await gone(watchdogPid)).to.equal(true);
    } finally {
      rt.kill('SIGKILL');
      if (watchdogPid > 0) try { process.kill(watchdogPid, 'SIGKILL'); } catch { /* gone, as it should be */ }
    }
  });
});
