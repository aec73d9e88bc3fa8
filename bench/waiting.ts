/**
 * `npm run bench:waiting`: heap held per trigger waiting for a worker slot. Fires 20,000
 * triggers at an event whose worker has `concurrency` 1 and a dispatcher that holds its one
 * message, so every other trigger waits in the gate; the figure is the growth of the heap after
 * a full collection, divided by the triggers. Deterministic, unlike rates: under overload a
 * runtime holds up to `maxQueue` of these.
 */
import { EventCatalog } from '../src/core/event-catalog.ts';
import { Firing, type FireInput } from '../src/core/firing.ts';
import { WorkerGate } from '../src/workers/gate.ts';
import type { WorkerRegistry } from '../src/workers/registry.ts';
import type { Dispatcher } from '../src/workers/dispatcher.ts';
import type { WorkerSpec } from '../src/workers/revision.ts';
import type { WorkerOutcome } from '../src/shared/message.ts';
import { silentLogger } from '../src/shared/logger.ts';

const N = 20_000;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');

const spec: WorkerSpec = { id: 'w', rev: '1-a', type: 'test', isolation: 'thread', delegate: '', attachments: {}, arguments: {}, limits: { timeout: 30_000, concurrency: 1, idle: 60_000 }, env: {}, couch: false };
const held: Array<(o: WorkerOutcome) => void> = [];
const dispatcher: Dispatcher = {
  name: 'holding', serves: () => true,
  dispatch: () => new Promise((resolve) => { held.push(resolve); }),
  retire: async () => undefined, stats: () => ({ name: 'holding', warm: 0, inFlight: held.length }), close: async () => undefined,
};
const catalog = new EventCatalog();
catalog.apply([{ id: 'e', doc: { _id: 'e', trigger: { '/e': {} }, workers: { w: {} } } }]);
const firing = new Firing({
  catalog, registry: { peek: () => spec } as unknown as WorkerRegistry, gate: new WorkerGate(N * 2, N * 2),
  dispatchers: [dispatcher], log: { record: () => undefined }, logger: silentLogger, maxChainDepth: 5,
});

/** What fireHttp builds for `GET /_events/e?n=<i>` from a client sending four headers. */
function input(i: number): FireInput {
  const query = { n: String(i) };
  const headers = { host: '127.0.0.1:5985', 'user-agent': 'bench', accept: '*/*', connection: 'keep-alive' };
  return { trigger: 'http', method: 'GET', path: '/e', params: query, request: { query, headers, body: undefined }, depth: 0 };
}

async function main(): Promise<void> {
  const keep: unknown[] = [];
  // Warm up the code paths, then measure.
  for (let i = 0; i < 1_000; i++) keep.push(firing.fire(input(i)));
  await new Promise((r) => setImmediate(r));
  gc!(); gc!();
  const before = process.memoryUsage().heapUsed;
  const fired: unknown[] = [];
  for (let i = 0; i < N; i++) fired.push(firing.fire(input(i)));
  await new Promise((r) => setImmediate(r));
  fired.length = 0; // the caller (an HTTP reply) does not keep what fire() returned
  gc!(); gc!();
  const after = process.memoryUsage().heapUsed;
  console.log(JSON.stringify({ waiting: firing.queued(), bytesPerWaitingTrigger: Math.round((after - before) / N) }));
  for (const r of held.splice(0)) r({ worker: 'w', status: 'ok', logs: [], durationMs: 0 });
}

main().catch((err) => { console.error(err); process.exit(1); });
