/**
 * types/worker.d.ts against the runtime: a worker that returns its own message is fired by each
 * kind of trigger — HTTP, changes, schedule, an emitted event and a lifecycle event — and every
 * message it received must typecheck, as an object literal (so a field the types lack is an
 * error too), against the type the shipped declarations give that kind.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import type { Runtime } from '../../src/runtime.ts';
import { connect } from '../../src/store/couch.ts';
import { initStore } from '../../src/store/init.ts';
import { adminHeaders, couchUrl, dropPrefix, uniquePrefix } from '../support/couch.ts';
import { eventually, firstOutcome, startRuntime } from '../support/runtime.ts';

const root = path.resolve(import.meta.dirname, '../..');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const att = (code: string) => ({ content_type: 'application/javascript', data: Buffer.from(code).toString('base64') });

const kTypeOf = { http: 'HttpMessage', changes: 'ChangesMessage', schedule: 'ScheduleMessage', event: 'EmittedMessage', lively: 'LifecycleMessage' } as const;

describe('worker types (types/worker.d.ts) against the messages the runtime sends', function () {
  this.timeout(90_000);
  const prefix = uniquePrefix();
  const watched = `${prefix}watched`;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'lively-types-'));
  let rt: Runtime;

  before(async () => {
    rt = await startRuntime({
      config: { dbPrefix: prefix },
      before: async (p) => {
        const nano = connect(couchUrl());
        await initStore(nano, { prefix: p });
        await nano.db.create(watched);
        await nano.use(`${p}workers`).bulk({ docs: [
          { _id: 'echo', type: 'node', delegate: 'index.js', _attachments: { 'index.js': att('module.exports = async (msg) => JSON.parse(JSON.stringify(msg));\n') } },
          { _id: 'emitter', type: 'node', delegate: 'index.js', _attachments: { 'index.js': att("module.exports = async (msg, ctx) => { ctx.emit('sent', { to: 'ada' }); return 1; };\n") } },
          { _id: 'failer', type: 'node', delegate: 'index.js', _attachments: { 'index.js': att("module.exports = async () => { throw new Error('on purpose'); };\n") } },
        ] });
        await nano.use<Record<string, unknown>>(`${p}events`).bulk({ docs: [
          { _id: 'types_http', trigger: [{ path: '/types/:name' }], workers: [{ name: 'echo', parameters: { name: ':name' }, forward: ['name'] }] },
          { _id: 'types_changes', trigger: [{ changes: { db: watched, include_docs: true } }], workers: { echo: {} } },
          { _id: 'types_schedule', trigger: [{ schedule: { every: '1s' } }], workers: { echo: {} } },
          { _id: 'types_emit', trigger: { '/types_emit': {} }, workers: { emitter: {} } },
          { _id: 'types_emitted', trigger: { '/emitter/sent': {} }, workers: { echo: {} } },
          { _id: 'types_fail', trigger: { '/types_fail': {} }, workers: { failer: {} } },
          { _id: 'types_lively', trigger: { '/lively/worker_error/failer': {} }, workers: { echo: {} } },
        ] });
      },
    });
  });
  after(async () => {
    await rt?.stop();
    if (rt) rmSync(rt.config.dataDir, { recursive: true, force: true });
    await dropPrefix(prefix);
    rmSync(tmp, { recursive: true, force: true });
  });

  /** The echo worker's newest result for an event, from the activation records. */
  async function echoed(event: string): Promise<Record<string, unknown>> {
    let result: Record<string, unknown> | undefined;
    await eventually(async () => {
      const res = await request(`${rt.url}/_lively/activations?event=${event}`, { headers: adminHeaders() });
      const acts = ((await res.body.json()) as { activations?: Array<{ workers: Array<{ worker: string; status: string; result?: Record<string, unknown> }> }> }).activations ?? [];
      result = acts.flatMap((a) => a.workers).find((w) => w.worker === 'echo' && w.status === 'ok')?.result;
      return result !== undefined;
    }, 20_000, `an echo of ${event}`);
    return result!;
  }

  it('every kind of trigger sends a message its type describes, field for field', async () => {
    const messages: Record<string, unknown>[] = [];
    const http = await firstOutcome(rt, '/types/ada?wait=true&x=1');
    expect(http.status).to.equal('ok');
    messages.push(http.result);
    await connect(couchUrl()).use(watched).insert({ _id: 'd1', n: 1 } as never);
    messages.push(await echoed('types_changes'));
    messages.push(await echoed('types_schedule'));
    expect((await firstOutcome(rt, '/types_emit?wait=true')).status).to.equal('ok');
    messages.push(await echoed('types_emitted'));
    expect((await firstOutcome(rt, '/types_fail?wait=true')).status).to.equal('error');
    messages.push(await echoed('types_lively'));
    expect(messages.map((m) => m.trigger)).to.deep.equal(['http', 'changes', 'schedule', 'event', 'lively']);

    mkdirSync(path.join(tmp, 'types'));
    copyFileSync(path.join(root, 'types/worker.d.ts'), path.join(tmp, 'types/worker.d.ts'));
    const lines = messages.map((m, i) => `export const m${i} = ${JSON.stringify(m, null, 1)} satisfies W.${kTypeOf[m.trigger as keyof typeof kTypeOf]};`);
    // and each narrows from the union by its trigger, as a handler for several kinds would
    lines.push(`export function kindOf(m: W.Message): string {
  switch (m.trigger) {
    case 'http': return m.request.headers['content-type'] as string ?? m.path;
    case 'changes': return m.change.id;
    case 'schedule': return m.tick.at;
    case 'event': return m.path;
    case 'lively': return m.path;
    default: { const never: never = m; return never; }
  }
}`);
    writeFileSync(path.join(tmp, 'messages.ts'), `import type * as W from 'livelycouch/worker';\n${lines.join('\n')}\n`);
    writeFileSync(path.join(tmp, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', types: [], skipLibCheck: false },
      files: ['messages.ts', 'types/worker.d.ts'],
    }));
    const failed = await promisify(execFile)(process.execPath, [tsc, '-p', tmp]).then(() => '', (e: { stdout: string }) => e.stdout);
    expect(failed, `the messages the runtime sent do not match types/worker.d.ts:\n${failed}\n${readFileSync(path.join(tmp, 'messages.ts'), 'utf8')}`).to.equal('');
  });
});
