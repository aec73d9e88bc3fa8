/**
 * A message with no JSON form — nested deeper than any stack can walk, as a changes trigger's
 * document or an emitted event's parameters can be — fails alone, on every kind of worker, and
 * a worker's output line nested that deep is a log line, not a command. Before, such a message
 * threw out of the thread pool's batching on a later turn and took the whole runtime down.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { kDefaultInterpreters } from '../../src/config/index.ts';
import type { Dispatcher } from '../../src/workers/dispatcher.ts';
import { IsolateDispatcher } from '../../src/workers/dispatch/isolate.ts';
import { ProcessDispatcher } from '../../src/workers/dispatch/process.ts';
import { ThreadDispatcher } from '../../src/workers/dispatch/thread.ts';
import type { WorkerSpec } from '../../src/workers/revision.ts';
import type { WorkerMessage } from '../../src/shared/message.ts';
import { kMaxJsonDepth } from '../../src/shared/json.ts';
import { parseOutputLine } from '../../src/shared/output.ts';
import { inlineSpec, messageFor } from '../fixtures/workers/thread/index.ts';

/** Nested far deeper than a recursive JSON.stringify can follow on any stack. */
function tooDeep(): unknown[] {
  let v: unknown[] = [];
  for (let i = 0; i < 200_000; i++) v = [v];
  return v;
}

/** Node 26's JSON.stringify is not recursive: there such a message has a JSON form and is delivered. */
const kStringifiesAnyDepth = (() => { try { JSON.stringify(tooDeep()); return true; } catch { return false; } })();

const source = 'module.exports = async (msg) => ({ got: msg.parameters.n });';

const kinds: Array<{ name: 'a thread' | 'an isolate' | 'a process'; make: (dir: string) => Dispatcher; spec: () => WorkerSpec }> = [
  { name: 'a thread', make: (dir) => new ThreadDispatcher({ cacheDir: dir, threads: 1 }), spec: () => inlineSpec('t_echo', { 'main.js': source }) },
  { name: 'an isolate', make: () => new IsolateDispatcher(), spec: () => inlineSpec('i_echo', { 'main.js': source }, { type: 'isolate' }) },
  {
    name: 'a process', make: (dir) => new ProcessDispatcher({ interpreters: kDefaultInterpreters, dataDir: dir, settleMs: 100, killGraceMs: 300 }),
    spec: () => inlineSpec('p_echo', { 'main.sh': 'while read line; do echo \'{"result":{"got":1}}\'; done' }, { type: 'sh' }),
  },
];

describe('a message with no JSON form', function () {
  this.timeout(20_000);
  for (const kind of kinds) {
    it(kStringifiesAnyDepth
      ? `is delivered to ${kind.name} worker, as this Node's JSON.stringify follows any depth; the messages around it are served`
      : `fails alone on ${kind.name} worker, with its reason; the same worker serves the messages around it`, async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'lc-unsendable-'));
      const d = kind.make(dir);
      try {
        const spec = kind.spec();
        const send = (message: WorkerMessage) => d.dispatch({ spec, message, onEmit: () => undefined });
        const deep = messageFor(spec, { n: 2 });
        deep.parameters.doc = tooDeep();
        // Dispatched together: for a thread worker they are batched in the same turn.
        const [before, bad, after] = await Promise.all([send(messageFor(spec, { n: 1 })), send(deep), send(messageFor(spec, { n: 1 }))]);
        if (kStringifiesAnyDepth) {
          expect(bad, JSON.stringify(bad.error)).to.deep.include({ status: 'ok', result: { got: kind.name === 'a process' ? 1 : 2 } });
        } else {
          expect(bad.status).to.equal('error');
          expect(bad.error).to.include({ code: 'LC_WORKER_ERROR' });
          expect(bad.error!.message).to.match(/the message cannot be sent to the worker as JSON: Maximum call stack size exceeded/);
        }
        for (const o of [before, after]) expect(o, JSON.stringify(o)).to.deep.include({ status: 'ok', result: { got: 1 } });
      } finally {
        await d.close(1000);
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('a thread worker\'s result or emit nested deeper than the limit fails like one with no JSON form', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lc-unsendable-'));
    const d = new ThreadDispatcher({ cacheDir: dir, threads: 1 });
    try {
      const nest = `const deep = () => { let v = []; for (let i = 0; i < ${kMaxJsonDepth + 10}; i++) v = [v]; return v; };`;
      const spec = inlineSpec('deep_result', { 'main.js': `${nest}
        module.exports = async (m, ctx) => {
          if (m.parameters.emit) ctx.emit('deep', { v: deep() });
          return m.parameters.n === 1 ? 'shallow' : deep();
        };` });
      const send = (parameters: Record<string, unknown>) => d.dispatch({ spec, message: messageFor(spec, parameters), onEmit: () => undefined });
      const result = await send({ n: 2 });
      expect(result.status).to.equal('error');
      expect(result.error!.message).to.equal(`result cannot be sent: nested deeper than ${kMaxJsonDepth} levels`);
      const emitted = await send({ emit: true });
      expect(emitted.error!.message).to.equal(`emit("deep"): its parameters are nested deeper than ${kMaxJsonDepth} levels`);
      expect(await send({ n: 1 })).to.include({ status: 'ok', result: 'shallow' });
    } finally {
      await d.close(1000);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an isolate worker\'s result nested deeper than the limit fails; an emit that deep is not sent and says so', async () => {
    const d = new IsolateDispatcher();
    try {
      const nest = `const deep = () => { let v = []; for (let i = 0; i < ${kMaxJsonDepth + 10}; i++) v = [v]; return v; };`;
      const spec = inlineSpec('deep_iso', { 'main.js': `${nest}
        module.exports = async (m, ctx) => {
          if (m.parameters.emit) { ctx.emit('deep', { v: deep() }); return 'emitted'; }
          return deep();
        };` }, { type: 'isolate' });
      const emits: unknown[] = [];
      const send = (parameters: Record<string, unknown>) => d.dispatch({ spec, message: messageFor(spec, parameters), onEmit: (e) => emits.push(e) });
      const result = await send({});
      expect(result.error!.message).to.equal(`result cannot be sent: nested deeper than ${kMaxJsonDepth} levels`);
      const emitted = await send({ emit: true });
      expect(emitted).to.include({ status: 'ok', result: 'emitted' });
      expect(emitted.logs.map((l) => l.msg)).to.deep.equal([`emit("deep") was not sent: its parameters are nested deeper than ${kMaxJsonDepth} levels`]);
      expect(emits).to.deep.equal([]);
    } finally {
      await d.close(1000);
    }
  });

  it('a worker output line nested deeper than the limit is an error log line, not a command', () => {
    const deep = `{"result":${'['.repeat(kMaxJsonDepth + 1)}${']'.repeat(kMaxJsonDepth + 1)}}`;
    const out = parseOutputLine(deep, 'stdout');
    expect(out).to.include({ kind: 'log', level: 'error' });
    expect((out as { msg: string }).msg).to.equal(`not taken as a command, being nested deeper than ${kMaxJsonDepth} levels: ${deep}`);
    // At the limit, and with brackets inside strings, it is still a command.
    const atLimit = `{"result":${'['.repeat(kMaxJsonDepth - 1)}"]]]["${']'.repeat(kMaxJsonDepth - 1)}}`;
    expect(parseOutputLine(atLimit, 'stdout')).to.include({ kind: 'result' });
    const emit = `{"emit":"x","parameters":{"a":${'['.repeat(kMaxJsonDepth)}${']'.repeat(kMaxJsonDepth)}}}`;
    expect(parseOutputLine(emit, 'stdout')).to.include({ kind: 'log', level: 'error' });
  });
});
