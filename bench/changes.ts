/**
 * Changes triggers on the embedded store (on disk, as `livelycouch start` runs it), with a
 * trivial node worker:
 *  - lag: from just before a document write to its worker's start, documents written one at
 *    a time (p50, p99);
 *  - throughput: N documents written while the event is disabled, then changes processed
 *    per second from enabling it to the last finished activation (the store's own write
 *    rate is reported beside it: a trigger cannot sustain more than the store takes in).
 * `BENCH_COUCH_URL=<admin url>` runs the same on that CouchDB (its databases get a prefix of their
 * own and are dropped at the end) instead of an embedded store. `BENCH_CHANGES_CONCURRENCY` and
 * `BENCH_CHANGES_PAGE` set the trigger's batch and page.
 * Prints one JSON line.  node --no-node-snapshot --import tsx bench/changes.ts [lagDocs=500] [docs=20000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeConfig } from '../src/config/index.ts';
import { Runtime } from '../src/runtime.ts';

const lagDocs = Number(process.argv[2] ?? 500);
const docs = Number(process.argv[3] ?? 20_000);
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lc-bench-changes-'));
const now = () => performance.timeOrigin + performance.now();

const couchUrl = process.env.BENCH_COUCH_URL;
const prefix = couchUrl ? `bench${Date.now().toString(36)}_` : 'lively_';
const inboxName = `${prefix}inbox`;
const rt = await new Runtime({ config: makeConfig({ port: 0, dataDir, sample: false, logLevel: 'error', ...(couchUrl ? { couchUrl, dbPrefix: prefix } : {}), ...(process.env.BENCH_CHANGES_CONCURRENCY ? { changesConcurrency: Number(process.env.BENCH_CHANGES_CONCURRENCY) } : {}), ...(process.env.BENCH_CHANGES_PAGE ? { changesPage: Number(process.env.BENCH_CHANGES_PAGE) } : {}) }) }).start();
const lags: number[] = [];
// the worker reports when it started; the bench reads it from the activation's outcome
const fireEvent = rt.firing.fireEvent.bind(rt.firing);
rt.firing.fireEvent = (event, input) => {
  const fired = fireEvent(event, input);
  fired.done.then((outcomes) => { for (const o of outcomes) { const r = o.result as { lag?: number } | undefined; if (typeof r?.lag === 'number') lags.push(r.lag); } }, () => undefined);
  return fired;
};

const nano = rt.nano;
await nano.db.create(inboxName);
const inbox = nano.use<Record<string, unknown>>(inboxName);
await rt.db.workers.insert({ _id: 'started', type: 'node', delegate: 'index.js', _attachments: { 'index.js': { content_type: 'application/javascript', data: Buffer.from(
  'module.exports = (m) => ({ lag: performance.timeOrigin + performance.now() - m.parameters.doc.t });').toString('base64') } } });
await rt.db.events.insert({ _id: 'on_write', trigger: { changes: { db: inboxName, include_docs: true } }, workers: { started: {} } });
while (rt.changesTriggers?.feeds('on_write') !== 1) await new Promise((r) => setTimeout(r, 20));
// warm the worker
await inbox.insert({ _id: 'warm', t: now() });
while (rt.firing.completed < 1) await new Promise((r) => setTimeout(r, 10));

// lag: one write at a time, each after the previous one's worker started
for (let i = 0; i < lagDocs; i++) {
  const seen = lags.length;
  await inbox.insert({ _id: `lag${i}`, t: now() });
  while (lags.length === seen) await new Promise((r) => setImmediate(r));
}
const sorted = lags.slice(1).sort((a, b) => a - b);
const q = (p: number) => Number(sorted[Math.floor(p * (sorted.length - 1))]!.toFixed(2));
const lag = { docs: sorted.length, p50ms: q(0.5), p99ms: q(0.99) };

// backlog: written while the event is disabled, then drained from its checkpoint once enabled
const ev = await rt.db.events.get('on_write');
const off = await rt.db.events.insert({ ...ev, disabled: true });
while (rt.changesTriggers?.feeds('on_write') !== 0) await new Promise((r) => setTimeout(r, 20));
const tw = performance.now();
for (let i = 0; i < docs; i += 1000) {
  await inbox.bulk({ docs: Array.from({ length: Math.min(1000, docs - i) }, (_, j) => ({ _id: `d${i + j}`, t: now() })) });
}
const writeSeconds = Number(((performance.now() - tw) / 1000).toFixed(2));
const base = rt.firing.completed;
const t0 = performance.now();
await rt.db.events.insert({ ...ev, _rev: off.rev, disabled: false });
while (rt.firing.completed - base < docs) await new Promise((r) => setTimeout(r, 5));
const elapsed = (performance.now() - t0) / 1000;
const throughput = { docs, perSecond: Math.round(docs / elapsed), seconds: Number(elapsed.toFixed(2)), writeSeconds, errors: rt.firing.outcomes.error + rt.firing.outcomes.timeout };

await rt.stop();
if (couchUrl) for (const db of await nano.db.list()) if (db.startsWith(prefix)) await nano.db.destroy(db);
rmSync(dataDir, { recursive: true, force: true });
console.log(JSON.stringify({ machine: `${os.cpus()[0]?.model} x${os.cpus().length}, node ${process.version}`, store: couchUrl ? 'CouchDB' : 'embedded (disk)', concurrency: rt.config.changesConcurrency, lag, throughput }));
