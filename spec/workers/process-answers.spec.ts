/**
 * Process workers get their answer however they wait before giving it, and nothing they write
 * is lost: output after silence ended a message is kept for that message (late output).
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { kDefaultInterpreters } from '../../src/config/index.ts';
import { ProcessDispatcher } from '../../src/workers/dispatch/process.ts';
import type { LateOutput } from '../../src/workers/dispatcher.ts';
import type { WorkerSpec } from '../../src/workers/revision.ts';
import { parseWorkerDoc } from '../../src/workers/worker-doc.ts';
import { message, workerSpec } from '../fixtures/workers/process/specs.ts';
import { eventually } from '../support/runtime.ts';

describe('ProcessDispatcher - answers are never lost', function () {
  this.timeout(20_000);
  let dataDir: string;
  let d: ProcessDispatcher;
  let server: Server;
  let url: string;
  before(async () => {
    // answers 600 ms after it is asked: a network call that blocks the worker in poll/select
    server = createServer((_req, res) => { setTimeout(() => res.end('slow hello'), 600); });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  after(async () => { await new Promise((r) => server.close(r)); });
  beforeEach(() => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'lively-answers-'));
    d = new ProcessDispatcher({ interpreters: kDefaultInterpreters, dataDir, settleMs: 100, killGraceMs: 300 });
  });
  afterEach(async () => {
    await d.close(1000);
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** A named pipe the worker reads, written 600 ms from now: a worker blocked opening and reading a file. */
  function slowFile(): string {
    const fifo = path.join(dataDir, `fifo-${Math.random().toString(36).slice(2)}`);
    execFileSync('mkfifo', [fifo]);
    setTimeout(() => writeFileSync(fifo, 'from the file'), 600);
    return fifo;
  }

  const ask = async (spec: WorkerSpec, how: string, late?: (l: LateOutput) => void) => {
    const params: Record<string, unknown> = { how, url };
    if (how === 'file') params.path = slowFile();
    return d.dispatch({ spec, message: message(spec, params), onEmit: () => {}, onLate: late });
  };

  const cases: Array<[type: string, file: string, how: string, got: string, over?: Partial<WorkerSpec>]> = [
    ['python', 'wait.py', 'sleep', 'slept'],
    ['python', 'wait.py', 'select', 'selected'],
    ['python', 'wait.py', 'poll', 'polled'],
    ['python', 'wait.py', 'net', 'slow hello'],
    ['python', 'wait.py', 'file', 'from the file'],
    ['sh', 'wait.sh', 'sleep', 'slept'],
    ['sh', 'wait.sh', 'net', 'slow hello'],
    ['sh', 'wait.sh', 'file', 'from the file'],
    ['node', 'wait.js', 'timer', 'waited', { isolation: 'process' }],
    ['node', 'wait.js', 'net', 'slow hello', { isolation: 'process' }],
    ['node', 'wait.js', 'file', 'from the file', { isolation: 'process' }],
  ];
  for (const [type, file, how, got, over] of cases) {
    it(`a ${type} worker that has never answered before, and waits (${how}) before its result, gets it`, async () => {
      // a fresh process each time: its first message is the one silence could have ended
      const o = await ask(workerSpec(type, file, over), how);
      expect(o.status, JSON.stringify(o)).to.equal('ok');
      expect(o.result).to.deep.include({ how, got });
    });
  }

  it('a line written after silence ended the message is kept as that message\'s late output, never given to the next', async () => {
    const spec = workerSpec('python', 'late.py');
    const late: LateOutput[] = [];
    const first = await d.dispatch({ spec, message: message(spec, { n: 1 }), onEmit: () => {}, onLate: (l) => late.push(l) });
    expect(first.status).to.equal('ok');
    expect(first.logs.map((l) => l.msg)).to.deep.equal(['handling message 1']);
    await eventually(() => late.length > 0, 5000, 'late output of message 1');
    expect(late[0]!.logs.map((l) => l.msg)).to.deep.equal(['late (after the message was ended by silence): late line for message 1']);
    const second = await d.dispatch({ spec, message: message(spec, { n: 2 }), onEmit: () => {} });
    expect(second.logs.map((l) => l.msg)).to.deep.equal(['handling message 2']);
  });

  it('a result after silence ended the message is kept with it, and the process is acknowledging from then on', async () => {
    const spec = workerSpec('python', 'late.py');
    const late: LateOutput[] = [];
    const first = await d.dispatch({ spec, message: message(spec, { n: 1, answer: true }), onEmit: () => {}, onLate: (l) => late.push(l) });
    expect(first.result).to.equal(undefined);
    await eventually(() => late.some((l) => l.result !== undefined), 5000, 'the late result');
    expect(late.find((l) => l.result !== undefined)!.result).to.deep.equal({ late: 1 });
    // silence no longer ends its messages: this one waits for its own result
    const second = await d.dispatch({ spec, message: message(spec, { n: 2, answer: true }), onEmit: () => {} });
    expect(second.status).to.equal('ok');
    expect(second.result).to.deep.equal({ late: 2 });
  });

  it('a node worker blocked on a network call with no time limit: its late result is kept, its next message gets its own', async () => {
    const spec = workerSpec('node', 'wait.js', { isolation: 'process' });
    const late: LateOutput[] = [];
    const first = await ask(spec, 'untimed', (l) => late.push(l));
    expect(first.status).to.equal('ok');
    if (first.result === undefined) {
      // silence ended it (the kernel cannot tell this wait from waiting for input): the result is late, not lost
      await eventually(() => late.some((l) => l.result !== undefined), 5000, 'the late result');
      expect(late.find((l) => l.result !== undefined)!.result).to.deep.include({ how: 'untimed', got: 'slow hello' });
    } else {
      expect(first.result).to.deep.include({ how: 'untimed', got: 'slow hello' });
    }
    const next = await ask(spec, 'timer');
    expect(next.result).to.deep.include({ how: 'timer', got: 'waited' });
  });

  it('a line written after the message was answered is kept as its late output too', async () => {
    const spec = workerSpec('sh', 'after.sh');
    const late: LateOutput[] = [];
    const first = await d.dispatch({ spec, message: message(spec), onEmit: () => {}, onLate: (l) => late.push(l) });
    expect(first.result).to.have.property('pid');
    await eventually(() => late.length > 0, 5000, 'late output');
    expect(late[0]!.logs.map((l) => l.msg)).to.deep.equal(['late (after the message was answered): written after the answer']);
    const second = await d.dispatch({ spec, message: message(spec), onEmit: () => {} });
    expect(second.logs).to.deep.equal([]);
  });

  it('a worker whose document says "ack": true is never ended by silence', async () => {
    const parsed = parseWorkerDoc({ _id: 'acks', _rev: '1-a', type: 'python', delegate: 'late.py', ack: true,
      _attachments: { 'late.py': { content_type: 'text/x-python', data: Buffer.from('x').toString('base64') } } },
    { workerTimeout: 10_000, workerIdle: 60_000, workerConcurrency: 1 });
    expect(parsed.ok && parsed.spec.ack).to.equal(true);
    const spec = workerSpec('python', 'late.py', { ack: true });
    const o = await d.dispatch({ spec, message: message(spec, { n: 1, answer: true }), onEmit: () => {} });
    expect(o.status).to.equal('ok');
    expect(o.result).to.deep.equal({ late: 1 });
    expect(o.logs.map((l) => l.msg)).to.deep.equal(['handling message 1', 'late line for message 1']);
  });
});
