import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { kDefaultInterpreters } from '../../src/config/index.ts';
import { ProcessDispatcher } from '../../src/workers/dispatch/process.ts';
import type { WorkerSpec } from '../../src/workers/revision.ts';
import { collectEmits, message, workerSpec } from '../fixtures/workers/process/specs.ts';

describe('ProcessDispatcher - messages on a real stdin', () => {
  let dataDir: string;
  let d: ProcessDispatcher;
  beforeEach(() => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'lively-process-'));
    d = new ProcessDispatcher({ interpreters: kDefaultInterpreters, dataDir, settleMs: 100, killGraceMs: 300 });
  });
  afterEach(async () => {
    await d.close(1000);
    rmSync(dataDir, { recursive: true, force: true });
  });
  const run = (spec: WorkerSpec, params: Record<string, unknown> = {}, args: Record<string, unknown> = {}) => {
    const { emits, onEmit } = collectEmits();
    return d.dispatch({ spec, message: message(spec, params, args), onEmit }).then((o) => ({ ...o, emits }));
  };

  it('python worker reads its arguments from stdin and returns a result; the same process serves the next message', async () => {
    const spec = workerSpec('python', 'echo.py');
    const a = await run(spec, {}, { to: 'support@example.com' });
    expect(a.status, JSON.stringify(a.error)).to.equal('ok');
    const r = a.result as { pid: number; arguments: unknown; cwd: string };
    expect(r.arguments).to.deep.equal({ to: 'support@example.com' });
    expect(r.cwd.startsWith(path.join(dataDir, 'workers'))).to.equal(true);
    expect(a.logs.map((l) => l.msg)).to.include('a plain line becomes a log');
    const b = await run(spec);
    expect((b.result as { pid: number }).pid).to.equal(r.pid);
  });

  it('sh worker answers from the JSON line it read, in the same process every time', async () => {
    const spec = workerSpec('sh', 'echo.sh');
    const a = await run(spec, { n: 1 });
    const b = await run(spec, { n: 2 });
    const ra = a.result as { pid: number; message: { parameters: unknown } };
    const rb = b.result as { pid: number; message: { parameters: unknown } };
    expect(ra.message.parameters).to.deep.equal({ n: 1 });
    expect(rb.message.parameters).to.deep.equal({ n: 2 });
    expect(rb.pid).to.equal(ra.pid);
  });

  it('node worker with isolation "process" runs on plain stdin/stdout', async () => {
    const spec = workerSpec('node', 'node-echo.js', { isolation: 'process' });
    expect(d.serves(spec)).to.equal(true);
    expect(d.serves({ ...spec, isolation: 'thread' })).to.equal(false);
    const o = await run(spec);
    expect(o.status).to.equal('ok');
    expect((o.result as { worker: string }).worker).to.equal(spec.id);
    expect((o.result as { pid: number }).pid).to.not.equal(process.pid);
  });

  it('a new revision is served by a new process and the old one is retired', async () => {
    const v1 = workerSpec('python', 'echo.py');
    const v2 = { ...v1, rev: v1.rev + '-next' };
    const a = await run(v1);
    const b = await run(v2);
    expect((b.result as { pid: number }).pid).to.not.equal((a.result as { pid: number }).pid);
    await d.retire(v1.id, v2.rev);
    expect(d.stats().warm).to.equal(1);
  });

  it('emits reach onEmit while the message runs', async () => {
    const o = await run(workerSpec('python', 'echo.py'), { emit: 'sent' });
    expect(o.emits).to.deep.equal([{ emit: 'sent', parameters: { from: 'python' } }]);
  });

  it('concurrency N keeps up to N processes of one worker', async () => {
    const spec = workerSpec('python', 'slow.py', { limits: { concurrency: 2 } });
    const outs = await Promise.all([run(spec, { ms: 300 }), run(spec, { ms: 300 })]);
    const pids = new Set(outs.map((o) => (o.result as { pid: number }).pid));
    expect(pids.size).to.equal(2);
    expect(d.stats().warm).to.equal(2);
  });

  it('a crash mid-message fails that activation with the exit code and stderr; the next message gets a fresh process', async () => {
    const spec = workerSpec('python', 'echo.py');
    const first = await run(spec);
    const crash = await run(spec, { crash: true });
    expect(crash.status).to.equal('error');
    expect(crash.error!.code).to.equal('LC_WORKER_EXIT');
    expect(crash.error!.message).to.contain('exited with code 3');
    expect(crash.error).to.include({ exitCode: 3, signal: null });
    expect(crash.error!.message).to.contain('about to fail on purpose');
    const next = await run(spec);
    expect(next.status).to.equal('ok');
    expect((next.result as { pid: number }).pid).to.not.equal((first.result as { pid: number }).pid);
  });

  it('a worker that keeps crashing is restarted with a growing delay, reported when it exceeds the timeout', async () => {
    const slowBackoff = new ProcessDispatcher({ interpreters: kDefaultInterpreters, dataDir, backoffBaseMs: 60_000, killGraceMs: 300 });
    try {
      const spec = workerSpec('python', 'echo.py', { limits: { timeout: 5000 } });
      const run2 = (p: Record<string, unknown>) => slowBackoff.dispatch({ spec, message: message(spec, p), onEmit: () => {} });
      expect((await run2({ crash: true })).error!.code).to.equal('LC_WORKER_EXIT');
      expect((await run2({ crash: true })).error!.code).to.equal('LC_WORKER_EXIT');
      const held = await run2({});
      expect(held.status).to.equal('error');
      expect(held.error!.message).to.match(/crashed 2 times in a row; next start in \d+ ms/);
    } finally {
      await slowBackoff.close(1000);
    }
  });

  it('a hung message hits its timeout, the process is killed, and the next message works', async () => {
    // the timeout covers starting a fresh process too: python behind pyenv's shim took 2.5 s on a loaded machine
    const spec = workerSpec('python', 'hang.py', { limits: { timeout: 4000 } });
    const first = await run(spec);
    const hung = await run(spec, { hang: true });
    expect(hung.status).to.equal('timeout');
    expect(hung.error!.code).to.equal('LC_WORKER_TIMEOUT');
    const next = await run(spec);
    expect(next.status).to.equal('ok');
    expect((next.result as { pid: number }).pid).to.not.equal((first.result as { pid: number }).pid);
  });

  it('a never-acknowledging worker is done once silent and waiting for input; the next message goes to the same process', async () => {
    const spec = workerSpec('sh', 'silent.sh');
    const a = await run(spec);
    expect(a.status).to.equal('ok');
    expect(a.result).to.equal(undefined);
    expect(a.logs).to.have.length(1);
    const b = await run(spec);
    expect(b.logs).to.have.length(1);
    expect(b.logs[0]!.msg).to.equal(a.logs[0]!.msg);
  });

  it('a never-acknowledging worker that has not run since its line was written is not done: stopped, then resumed', async () => {
    const spec = workerSpec('sh', 'silent.sh');
    const a = await run(spec);
    const pid = Number(/in (\d+)$/.exec(a.logs[0]!.msg)![1]);
    // Stopped, it stays in the read it was blocked in with the next line unread in its pipe, as
    // a process the line has woken does while a busy machine has not run it yet.
    process.kill(pid, 'SIGSTOP');
    let settled = false;
    const b = run(spec).finally(() => { settled = true; });
    try {
      await new Promise((r) => setTimeout(r, 600)); // four times the silence that ends a message
      expect(settled).to.equal(false);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const o = await b;
    expect(o.status).to.equal('ok');
    expect(o.logs.map((l) => l.msg)).to.deep.equal([`handled a message in ${pid}`]);
  });

  it('output that arrives while the runtime is busy is read before silence ends the message', async () => {
    const spec = workerSpec('sh', 'late.sh');
    let blocked = false;
    const o = await d.dispatch({
      spec,
      message: message(spec),
      onEmit: () => {
        // Same delay as the dispatcher's settleMs, set before it re-arms its silence timer:
        // Node runs both in one pass, this one first. While it blocks the event loop the worker
        // answers and goes back to its read, so the silence check finds it waiting with the
        // answer still unread in the pipe.
        setTimeout(() => { const until = Date.now() + 800; while (Date.now() < until); blocked = true; }, 100);
      },
    });
    expect(blocked).to.equal(true);
    expect(o.status).to.equal('ok');
    expect(o.result, JSON.stringify(o)).to.have.property('pid');
  });

  it('a flooding worker has its long line cut and extra lines counted; its result and the next message still work', async () => {
    const spec = workerSpec('python', 'flood.py');
    const o = await run(spec);
    expect(o.status).to.equal('ok');
    expect(o.result).to.have.property('pid');
    expect(o.logs.length).to.equal(1001);
    expect(o.logs.at(-1)!.msg).to.match(/^\d+ more output lines were not kept$/);
    expect(o.logs.every((l) => l.msg.length < 70 * 1024)).to.equal(true);
    const next = await run(spec);
    expect((next.result as { pid: number }).pid).to.equal((o.result as { pid: number }).pid);
  });

  it('an unknown type and a missing interpreter are outcomes, not crashes', async () => {
    const unknown = await run(workerSpec('cobol', 'echo.sh'));
    expect(unknown.status).to.equal('error');
    expect(unknown.error!.code).to.equal('LC_UNKNOWN_TYPE');
    const missing = new ProcessDispatcher({ interpreters: { ...kDefaultInterpreters, sh: ['no-such-interpreter-here'] }, dataDir });
    try {
      const spec = workerSpec('sh', 'echo.sh');
      const o = await missing.dispatch({ spec, message: message(spec), onEmit: () => {} });
      expect(o.error!.code).to.equal('LC_INTERPRETER_MISSING');
      expect(missing.problem(spec)!.code).to.equal('LC_INTERPRETER_MISSING');
    } finally {
      await missing.close(100);
    }
  });

  it('the environment is minimal: HOME is the worker directory, the document env is added, no runtime secrets', async () => {
    process.env.LIVELY_SPEC_SECRET = 'do-not-leak';
    const creds = new ProcessDispatcher({ interpreters: kDefaultInterpreters, dataDir, couchUrl: 'http://admin:pw@127.0.0.1:5984' });
    try {
      const spec = workerSpec('python', 'env.py', { env: { GREETING: 'hi' } });
      const env = (await creds.dispatch({ spec, message: message(spec), onEmit: () => {} })).result as Record<string, string>;
      expect(env.GREETING).to.equal('hi');
      expect(env.HOME!.startsWith(path.join(dataDir, 'workers'))).to.equal(true);
      expect(env).to.not.have.property('LIVELY_SPEC_SECRET');
      expect(env).to.not.have.property('COUCHDB_URL');
      const couchSpec = { ...workerSpec('python', 'env.py'), id: 'w-env-couch', couch: true };
      const env2 = (await creds.dispatch({ spec: couchSpec, message: message(couchSpec), onEmit: () => {} })).result as Record<string, string>;
      expect(env2.COUCHDB_URL).to.equal('http://127.0.0.1:5984');
    } finally {
      delete process.env.LIVELY_SPEC_SECRET;
      await creds.close(1000);
    }
  });

  it('rejects new messages once closed', async () => {
    await d.close(100);
    const spec = workerSpec('sh', 'echo.sh');
    let err: unknown;
    try { await d.dispatch({ spec, message: message(spec), onEmit: () => {} }); } catch (e) { err = e; }
    expect((err as { code: string }).code).to.equal('LC_SHUTTING_DOWN');
  });
});
