import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { kDefaultInterpreters } from '../../src/config/index.ts';
import type { LateOutput } from '../../src/workers/dispatcher.ts';
import { ProcessDispatcher } from '../../src/workers/dispatch/process.ts';
import type { WorkerSpec } from '../../src/workers/revision.ts';
import type { EmitCommand, WorkerOutcome } from '../../src/shared/message.ts';
import { message, workerSpec } from '../fixtures/workers/process/specs.ts';

describe('ProcessDispatcher - processes that take several messages at once ({"pipeline": N})', () => {
  let dataDir: string;
  let d: ProcessDispatcher;
  beforeEach(() => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'lively-pipeline-'));
    d = new ProcessDispatcher({ interpreters: kDefaultInterpreters, dataDir, settleMs: 100, killGraceMs: 300 });
  });
  afterEach(async () => {
    await d.close(1000);
    rmSync(dataDir, { recursive: true, force: true });
  });

  interface Run extends WorkerOutcome { emits: EmitCommand[]; late: LateOutput[]; activation: string }
  const run = async (spec: WorkerSpec, params: Record<string, unknown> = {}): Promise<Run> => {
    const emits: EmitCommand[] = [];
    const late: LateOutput[] = [];
    const m = message(spec, params);
    const o = await d.dispatch({ spec, message: m, onEmit: (e) => { emits.push(e); }, onLate: (l) => { late.push(l); } });
    return { ...o, emits, late, activation: m.activation };
  };
  const n = (o: WorkerOutcome) => (o.result as { n: unknown }).n;
  const pid = (o: WorkerOutcome) => (o.result as { pid: number }).pid;

  it('python (messages(pipeline=4)): one process holds several messages and answers each with its own result and emits', async () => {
    const spec = workerSpec('python', 'pipe.py', { limits: { concurrency: 8, processes: 1 } });
    await run(spec, { n: 0 });
    const outs = await Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map((i) => run(spec, { n: i })));
    outs.forEach((o, i) => {
      expect(o.status, JSON.stringify(o.error)).to.equal('ok');
      expect(n(o)).to.equal(i + 1);
      expect(o.emits).to.deep.equal([{ emit: 'seen', parameters: { n: i + 1 } }]);
    });
    expect(new Set(outs.map(pid)).size).to.equal(1);
    expect(d.stats().warm).to.equal(1);
  });

  it('processes: 2 keeps at most two processes for eight messages at once', async () => {
    const spec = workerSpec('python', 'pipe.py', { limits: { concurrency: 8, processes: 2 } });
    const outs = await Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map((i) => run(spec, { n: i })));
    outs.forEach((o, i) => expect(n(o)).to.equal(i + 1));
    expect(new Set(outs.map(pid)).size).to.be.within(1, 2);
    expect(d.stats().warm).to.be.within(1, 2);
  });

  it('sh (lc_pipeline): answers in order reach their own messages', async () => {
    const spec = workerSpec('sh', 'pipe.sh', { limits: { concurrency: 4, processes: 1 } });
    await run(spec, { n: 0 });
    const outs = await Promise.all([1, 2, 3, 4].map((i) => run(spec, { n: i })));
    outs.forEach((o, i) => expect(n(o), JSON.stringify(o)).to.equal(i + 1));
    expect(new Set(outs.map(pid)).size).to.equal(1);
  });

  it('answers in reverse order go by id to their own messages; an id never sent reaches nobody; a late line by id is kept for its message', async () => {
    const spec = workerSpec('node', 'pipe-reverse.js', { isolation: 'process', limits: { concurrency: 8, processes: 1 } });
    const first = await run(spec, { n: 0 });
    expect(first.result).to.deep.equal({ n: 0, first: true });
    const outs = await Promise.all([1, 2, 3, 4].map((i) => run(spec, { n: i, hold: 4 })));
    outs.forEach((o, i) => {
      expect(o.status, JSON.stringify(o.error)).to.equal('ok');
      expect(n(o)).to.equal(i + 1);
      expect(o.logs.map((l) => l.msg)).to.deep.equal([`for ${i + 1}`]);
    });
    expect(outs.some((o) => n(o) === 'nobody')).to.equal(false);
    // the late line names the message answered first (the last sent); its late output is handed on after the silence period
    await new Promise((r) => setTimeout(r, 400));
    const withLate = outs.filter((o) => o.late.length > 0);
    expect(withLate.map((o) => n(o))).to.deep.equal([4]);
    expect(withLate[0]!.late[0]!.logs.map((l) => l.msg)).to.deep.equal(['late (after the message was answered): after my answer']);
  });

  it('a process that dies holding several messages fails exactly those, each naming the worker; the next message gets a fresh process', async () => {
    const spec = workerSpec('node', 'pipe-die.js', { isolation: 'process', limits: { concurrency: 8, processes: 1 } });
    const warm = await run(spec);
    const outs = await Promise.all([run(spec, { n: 1 }), run(spec, { n: 2 }), run(spec, { n: 3, die: true })]);
    expect(outs[0]!.status).to.equal('ok');
    expect(n(outs[0]!)).to.equal(1);
    for (const o of outs.slice(1)) {
      expect(o.status).to.equal('error');
      expect(o.error!.code).to.equal('LC_WORKER_EXIT');
      expect(o.error!.message).to.include(`worker "${spec.id}"`).and.include('exited with code 3').and.include('dying on purpose');
      expect(o.error!.exitCode).to.equal(3);
    }
    expect(outs[2]!.error!.message).to.include('it held 2 messages; this one was not answered');
    const next = await run(spec);
    expect(next.status).to.equal('ok');
    expect(pid(next)).to.not.equal(pid(warm));
  });

  it('a held message that times out kills the process; the others it held fail saying which message it was', async () => {
    const spec = workerSpec('node', 'pipe-die.js', { isolation: 'process', limits: { concurrency: 8, processes: 1, timeout: 1000 } });
    await run(spec);
    const hung = run(spec, { n: 1, hang: true });
    await new Promise((r) => setTimeout(r, 300));
    const behind = run(spec, { n: 2, hang: true });
    const [a, b] = await Promise.all([hung, behind]);
    expect(a.status).to.equal('timeout');
    expect(a.error!.code).to.equal('LC_WORKER_TIMEOUT');
    expect(b.status).to.equal('error');
    expect(b.error!.code).to.equal('LC_WORKER_RETIRED');
    expect(b.error!.message, b.error!.message).to.include(`worker "${spec.id}"`).and.include(`because message ${a.activation} passed its timeout`);
  });

  it('node (serve): async handlers finishing out of order answer their own messages, with their own emits and logs', async () => {
    const spec = workerSpec('node', 'pipe-serve.js', { isolation: 'process', limits: { concurrency: 8, processes: 1 } });
    await run(spec, { n: 4 });
    const outs = await Promise.all([1, 2, 3, 4].map((i) => run(spec, { n: i })));
    outs.forEach((o, i) => {
      expect(o.status, JSON.stringify(o.error)).to.equal('ok');
      expect(n(o)).to.equal(i + 1);
      expect(o.emits).to.deep.equal([{ emit: 'done', parameters: { n: i + 1 } }]);
      expect(o.logs.map((l) => l.msg)).to.deep.equal([`handled ${i + 1}`]);
    });
    expect(new Set(outs.map(pid)).size).to.equal(1);
    const failed = await run(spec, { n: 4, fail: true });
    expect(failed.status).to.equal('ok');
    expect(failed.result).to.equal(undefined);
    expect(failed.logs.some((l) => l.level === 'error' && l.msg.includes('asked to fail'))).to.equal(true);
  });
});
