/**
 * `npm run bench:records -- [records] [seconds]`: what writing one batch of activation records
 * costs the store, in the form LivelyCouch writes it (v3: every column packed into one string,
 * src/activations/int-column.ts) and in the form it wrote before (v2: the same columns as JSON
 * arrays), alternating. The batch is `records` records (default 20,000: one second of a busy
 * runtime) as a busy runtime records them: one event and worker, durations that differ, records
 * finishing a little out of the order they started in. Each form is written again and again for
 * `seconds` (default 3), two rounds (the first a warm-up). Prints per write the store's CPU time
 * (from /proc), the wall time and the document's size. Linux only.
 *
 * The embedded store in memory by default, as in `npm run bench`. BENCH_COUCH_URL=<admin URL>
 * writes to that CouchDB instead; its CPU is read when BENCH_COUCH_PID names its process
 * (`pgrep -f beam.smp`), otherwise only wall times are printed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { BatchBuilder, type StoredBatch } from '../src/activations/batch.ts';
import { unpackInts } from '../src/activations/int-column.ts';
import { builtStore } from './built-store.ts';
import { processCpuUs } from './cpu-measure.ts';

const records = Number(process.argv[2] ?? 20_000);
const seconds = Number(process.argv[3] ?? 3);
const couchUrl = process.env.BENCH_COUCH_URL;

/** The store process's CPU in ms, when its process is known. */
const cpuMs = (pid: number | undefined): number | undefined => (pid === undefined ? undefined : processCpuUs(pid) / 1000);

/** One second of a busy runtime's records, built as the recorder builds them. */
function packed(id: string): StoredBatch {
  const b = new BatchBuilder();
  const t = Date.now();
  for (let i = 0; i < records; i++) {
    const started = t + Math.floor(i / 20) - (i % 7 === 0 ? 3 : 0);
    const counter = 5_000 + i + (i % 5 === 0 ? 2 : i % 5 === 1 ? -1 : 0);
    const ms = Math.round((0.05 + ((i * 7919) % 97) / 100) * 100) / 100;
    b.add(`a1b2c3d4-${started.toString(36)}-${counter.toString(36)}`, 'bench_thread', 'http', '/bench/thread', 'GET', started, ms, 'trivial:ok', null);
  }
  return b.stored(id);
}

/** The same batch in the form written before packed columns (v2): each column a JSON array. */
function arrays(p: StoredBatch): object {
  const n = p.count;
  const ints = (s: string) => unpackInts(s, n, false);
  const counters = unpackInts(p.activation, n, true);
  return {
    _id: p._id, type: 'activations', v: 2, count: n, boot: p.boot, strings: p.strings,
    activation: counters.map((k, i) => p.odd?.[i] ?? k), events: ints(p.events), trigger: ints(p.trigger), path: ints(p.path),
    method: ints(p.method), t0: p.t0, started: unpackInts(p.started, n, true), durationMs: ints(p.duration).map((x) => x / 100),
    workers: ints(p.workers), parent: ints(p.parent), details: p.details,
  };
}

const dataDir = couchUrl ? undefined : mkdtempSync(path.join(os.tmpdir(), 'lively-bench-records-'));
const store = dataDir ? await builtStore({ dataDir, memory: true }) : undefined;
await store?.start();
const u = new URL(couchUrl ?? store!.url);
const db = `${u.protocol}//${u.host}/bench_records_${process.pid}`;
const headers = {
  authorization: 'Basic ' + Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64'),
  'content-type': 'application/json',
};
const storePid = store ? store.pid : process.env.BENCH_COUCH_PID ? Number(process.env.BENCH_COUCH_PID) : undefined;

let seq = 0;
async function measure(form: 'v3' | 'v2'): Promise<{ cpu?: number; wall: number; bytes: number }> {
  const cpu0 = cpuMs(storePid);
  let wall = 0, writes = 0, bytes = 0;
  for (const end = performance.now() + seconds * 1000; performance.now() < end;) {
    const p = packed(`batch-${seq++}`);
    const body = JSON.stringify(form === 'v3' ? p : arrays(p));
    bytes = body.length;
    const t0 = performance.now();
    const res = await request(`${db}/${p._id}`, { method: 'PUT', headers, body });
    const text = await res.body.text();
    if (res.statusCode !== 201) throw new Error(`PUT answered ${res.statusCode}: ${text}`);
    wall += performance.now() - t0;
    writes++;
  }
  const cpu1 = cpuMs(storePid);
  return { ...(cpu0 !== undefined ? { cpu: +((cpu1! - cpu0) / writes).toFixed(1) } : {}), wall: +(wall / writes).toFixed(1), bytes };
}

try {
  await (await request(db, { method: 'PUT', headers })).body.dump();
  const rows: Array<{ round: number; form: string; storeCpuMsPerWrite?: number; wallMsPerWrite: number; bytes: number }> = [];
  for (let round = 0; round < 2; round++) {
    for (const form of ['v3', 'v2'] as const) {
      const m = await measure(form);
      if (round === 1) rows.push({ round, form, storeCpuMsPerWrite: m.cpu, wallMsPerWrite: m.wall, bytes: m.bytes });
      console.log(`${round === 0 ? 'warm-up ' : ''}${form === 'v3' ? 'packed columns (v3)' : 'JSON arrays (v2)'}: ${m.bytes} bytes, store CPU per write ${m.cpu ?? '?'} ms, wall ${m.wall} ms`);
    }
  }
  console.log(JSON.stringify({ store: couchUrl ? 'couchdb' : 'embedded', records, seconds, rows }));
} finally {
  await (await request(db, { method: 'DELETE', headers })).body.dump().catch(() => undefined);
  await store?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}
