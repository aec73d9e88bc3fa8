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
import type { WorkerSpec } from '../../src/workers/spec.ts';
import type { WorkerMessage } from '../../src/shared/message.ts';
import { kMaxJsonDepth } from '../../src/shared/json.ts';
import { parseOutputLine } from '../../src/shared/output.ts';
import { inlineSpec, messageFor } from '../fixtures/workers/thread/index.ts';

/** Nested far deeper than JSON.stringify can follow on any stack. */
function tooDeep(): unknown[] {
  let v: unknown[] = [];
  for (let i = 0; i < 200_000; i++) v = [v];
  return v;
}

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
    it(`fails alone on ${kind.name} worker, with its reason; the same worker serves the messages around it`, async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'lc-unsendable-'));
      const d = kind.make(dir);
      try {
        const spec = kind.spec();
        const send = (message: WorkerMessage) => d.dispatch({ spec, message, onEmit: () => undefined });
        const deep = messageFor(spec, { n: 2 });
        deep.parameters.doc = tooDeep();
        // Dispatched together: for a thread worker they are batched in the same turn.
        const [before, bad, after] = await Promise.all([send(messageFor(spec, { n: 1 })), send(deep), send(messageFor(spec, { n: 1 }))]);
        expect(bad.status).to.equal('error');
        expect(bad.error).to.include({ code: 'LC_WORKER_ERROR' });
        expect(bad.error!.message).to.match(/the message cannot be sent to the worker as JSON: Maximum call stack size exceeded/);
        for (const o of [before, after]) expect(o, JSON.stringify(o)).to.deep.include({ status: 'ok', result: { got: 1 } });
      } finally {
        await d.close(1000);
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

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
