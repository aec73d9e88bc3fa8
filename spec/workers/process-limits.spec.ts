/**
 * What process workers get and what holds them: the helpers for python and sh, the `memory`
 * limit, and their process group, which goes with them (what they left in the background too).
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { kDefaultInterpreters } from '../../src/config/index.ts';
import { ProcessDispatcher } from '../../src/workers/dispatch/process.ts';
import type { WorkerSpec } from '../../src/workers/revision.ts';
import { alive, collectEmits, gone, message, workerSpec } from '../fixtures/workers/process/specs.ts';

describe('ProcessDispatcher - helpers, memory limits, process groups', function () {
  this.timeout(30_000);
  let dataDir: string;
  let d: ProcessDispatcher;
  beforeEach(() => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'lively-limits-'));
    d = new ProcessDispatcher({ interpreters: kDefaultInterpreters, dataDir, settleMs: 100, killGraceMs: 300, couchUrl: 'http://admin:pw@127.0.0.1:5984' });
  });
  afterEach(async () => {
    await d.close(1000);
    rmSync(dataDir, { recursive: true, force: true });
  });
  const run = async (spec: WorkerSpec, params: Record<string, unknown> = {}) => {
    const { emits, onEmit } = collectEmits();
    return { ...(await d.dispatch({ spec, message: message(spec, params), onEmit })), emits };
  };

  it('python: `from livelycouch import result` is on the module path; result, emit, log and the CouchDB URL work', async () => {
    const spec = { ...workerSpec('python', 'helper.py'), couch: true };
    const a = await run(spec, { n: 1 });
    expect(a.status, JSON.stringify(a.error)).to.equal('ok');
    expect(a.result).to.deep.equal({ n: 1, couch: 'http://127.0.0.1:5984' });
    expect(a.emits).to.deep.equal([{ emit: 'sent', parameters: { n: 1 } }]);
    expect(a.logs.map((l) => [l.level, l.msg])).to.deep.equal([['warn', 'working on 1']]);
    // the first result made it an acknowledging worker: the same process answers again
    expect((await run(spec, { n: 2 })).result).to.deep.equal({ n: 2, couch: 'http://127.0.0.1:5984' });
  });

  it('sh: `. livelycouch.sh` is found on PATH; lc_result, lc_emit and lc_log work', async () => {
    const o = await run(workerSpec('sh', 'helper.sh'));
    expect(o.status, JSON.stringify(o.error)).to.equal('ok');
    expect(o.result).to.deep.equal({ couch: 'none' });
    expect(o.emits).to.deep.equal([{ emit: 'sent', parameters: { from: 'sh' } }]);
    expect(o.logs.map((l) => l.msg)).to.deep.equal(['got "a message"']);
  });

  it('"memory" limits a python process: a 1 GB allocation fails it with LC_WORKER_MEMORY, and the next message works', async () => {
    const spec = workerSpec('python', 'hog.py', { limits: { memory: 64 } });
    expect((await run(spec, { mb: 8 })).result).to.deep.equal({ held: 8 * 1024 * 1024 });
    const o = await run(spec, { mb: 1024 });
    expect(o.status).to.equal('error');
    expect(o.error!.code).to.equal('LC_WORKER_MEMORY');
    expect(o.error!.message).to.match(/ran out of memory \(limit 64 MB\)/);
    expect((await run(spec, { mb: 1 })).status).to.equal('ok');
    // without a limit the same allocation is the machine's business, not the runtime's
    expect((await run(workerSpec('python', 'hog.py'), { mb: 100 })).result).to.deep.equal({ held: 100 * 1024 * 1024 });
  });

  it('"memory" limits the heap of a node process worker: filling it fails with LC_WORKER_MEMORY', async () => {
    const spec = workerSpec('node', 'hog.js', { isolation: 'process', limits: { memory: 64 } });
    expect((await run(spec)).status).to.equal('ok');
    const o = await run(spec, { hog: true });
    expect(o.status).to.equal('error');
    expect(o.error!.code).to.equal('LC_WORKER_MEMORY');
    expect((await run(spec)).status).to.equal('ok');
  });

  /** The pid of the `sleep 288 &` the worker left behind, once it says it. */
  const background = (emits: Array<{ parameters: Record<string, unknown> }>) => emits[0]!.parameters.pid as number;

  it('what a worker left in the background goes with it when it stops (idle, or retired)', async () => {
    const spec = workerSpec('sh', 'background.sh', { limits: { idle: 300 } });
    const o = await run(spec);
    expect(o.status).to.equal('ok');
    const pid = background(o.emits);
    expect(alive(pid)).to.equal(true);
    expect(await gone(pid, 5000)).to.equal(true);
    const v1 = workerSpec('sh', 'background.sh');
    const again = await run(v1);
    expect(alive(background(again.emits))).to.equal(true);
    await d.retire(v1.id, 'a-newer-rev');
    expect(await gone(background(again.emits), 5000)).to.equal(true);
  });

  it('what a worker left in the background goes with it when its message times out', async () => {
    const spec = workerSpec('sh', 'background.sh', { limits: { timeout: 1000 } });
    const o = await run(spec, { hang: true });
    expect(o.status).to.equal('timeout');
    expect(await gone(background(o.emits), 5000)).to.equal(true);
  });

  it('what a worker left in the background goes with it when the dispatcher closes', async () => {
    const o = await run(workerSpec('sh', 'background.sh'));
    const pid = background(o.emits);
    expect(alive(pid)).to.equal(true);
    await d.close(1000);
    expect(await gone(pid, 5000)).to.equal(true);
  });
});
