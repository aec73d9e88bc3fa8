/**
 * The console's worker figures come from the runtime itself: per worker, its warm instances
 * (threads holding it, kept processes, its isolate), the messages it has running and waiting in
 * the gate, and the memory of what is its own (a process's resident set, an isolate's heap;
 * thread workers share their threads' memory, so none is claimed for them).
 */
import { expect } from 'chai';
import { request } from 'undici';
import type { Runtime } from '../../src/runtime.ts';
import { adminHeaders, dropPrefix, uniquePrefix } from '../support/couch.ts';
import { eventually, startRuntime } from '../support/runtime.ts';

const att = (code: string, type = 'application/javascript') => ({ content_type: type, data: Buffer.from(code).toString('base64') });

interface Row { id: string; warm: number; inFlight: number; queued: number; memoryBytes?: number }

describe('console: per-worker figures', function () {
  this.timeout(60_000);
  const prefix = uniquePrefix();
  let rt: Runtime;

  before(async () => {
    rt = await startRuntime({ config: { dbPrefix: prefix } });
    await rt.db.workers.bulk({ docs: [
      { _id: 'threaded', type: 'node', delegate: 'index.js', _attachments: { 'index.js': att('module.exports = () => ({ ok: 1 });') } },
      { _id: 'sandboxed', type: 'isolate', delegate: 'index.js', _attachments: { 'index.js': att('module.exports = () => ({ ok: 1 });') } },
      // one message at a time, each taking a while: the others wait in the gate
      { _id: 'slow', type: 'sh', delegate: 'main.sh', concurrency: 1, queue: 10, _attachments: { 'main.sh': att('while read line; do sleep 1.5; echo \'{"result": 1}\'; done\n', 'text/x-sh') } },
    ] } as never);
    await rt.db.events.bulk({ docs: [
      { _id: 'a', trigger: { '/a': {} }, workers: { threaded: {} } },
      { _id: 'b', trigger: { '/b': {} }, workers: { sandboxed: {} } },
      { _id: 'c', trigger: { '/c': {} }, workers: { slow: {} } },
    ] });
    await eventually(() => rt.catalog.matcher.size >= 3, 10_000, 'events loaded');
  });

  after(async () => {
    await rt?.stop();
    await dropPrefix(prefix);
  });

  async function rows(): Promise<Map<string, Row>> {
    const res = await request(`${rt.url}/_lively/console/workers`, { headers: adminHeaders() });
    expect(res.statusCode).to.equal(200);
    const body = await res.body.json() as { workers: Row[] };
    return new Map(body.workers.map((w) => [w.id, w]));
  }

  it('shows nothing warm, running or waiting before anything fired', async () => {
    const r = await rows();
    for (const id of ['threaded', 'sandboxed', 'slow']) {
      expect(r.get(id), id).to.include({ warm: 0, inFlight: 0, queued: 0 });
    }
  });

  it('counts warm instances and the memory each kind can own', async () => {
    for (const p of ['/a', '/b']) {
      const res = await request(`${rt.url}/_events${p}?wait=true`);
      const body = await res.body.json() as { outcomes: Array<{ status: string }> };
      expect(body.outcomes[0]!.status, p).to.equal('ok');
    }
    const r = await rows();
    expect(r.get('threaded')!.warm).to.be.at.least(1);
    expect(r.get('threaded')!.memoryBytes, 'a thread worker claims no memory of its own').to.equal(undefined);
    expect(r.get('sandboxed')!.warm).to.equal(1);
    expect(r.get('sandboxed')!.memoryBytes).to.be.above(100_000);
  });

  it('shows one message running and the others queued for a worker that takes one at a time, then none', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await request(`${rt.url}/_events/c`);
      await res.body.text();
      expect(res.statusCode).to.equal(202);
    }
    await eventually(async () => (await rows()).get('slow')!.inFlight === 1, 5_000, 'one running');
    const during = (await rows()).get('slow')!;
    expect(during.queued).to.be.within(1, 2);
    await eventually(async () => (await rows()).get('slow')!.warm === 1, 5_000, 'its process counted');
    expect((await rows()).get('slow')!.memoryBytes).to.be.above(100_000);
    await eventually(async () => { const s = (await rows()).get('slow')!; return s.inFlight === 0 && s.queued === 0; }, 15_000, 'all three done');
  });
});
