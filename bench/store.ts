/**
 * `npm run bench:store -- [seconds]`: what one `_bulk_docs` write costs the embedded store, by
 * what it writes, with the store admin's direct lane (src/store/embedded/direct-bulk.ts) and
 * without it (LIVELY_STORE_DIRECT_BULK=off: through express-pouchdb), side by side. Writes:
 * one durable-journal batch document of 1, 25 or 100 entries, that document with the deletion
 * of the one written before (the journal's steady state), the same with its entries as an array
 * (as earlier versions wrote them), and 100 small documents.
 * Written one at a time for `seconds` each (default 3), the two stores alternating, two rounds
 * (the first a warm-up), against stores in memory (as in `npm run bench`). Prints per write the
 * wall time and the store process's CPU time (from /proc). Linux only.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { Env } from '../src/store/embedded/contract.ts';
import type { EmbeddedStore } from '../src/store/embedded/supervisor.ts';
import { builtStore } from './built-store.ts';
import { processCpuUs } from './cpu-measure.ts';

const seconds = Number(process.argv[2] ?? 3);

const dataDirs: string[] = [];
async function startStore(lane: boolean): Promise<EmbeddedStore> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lively-bench-store-'));
  dataDirs.push(dataDir);
  const store = await builtStore({ dataDir, memory: true });
  if (lane) delete process.env[Env.directBulk]; else process.env[Env.directBulk] = 'off';
  await store.start();
  delete process.env[Env.directBulk];
  return store;
}
const stores = { lane: await startStore(true), express: await startStore(false) };

function target(store: EmbeddedStore) {
  const u = new URL(store.url);
  return {
    base: `${u.protocol}//${u.host}/bench_journal`,
    headers: {
      authorization: 'Basic ' + Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64'),
      'content-type': 'application/json',
    },
  };
}

/** utime + stime of the store process, in ms. */
const storeCpuMs = (store: EmbeddedStore): number => processCpuUs(store.pid!) / 1000;

const entry = (i: number) => ({
  activation: `a1b2c3d4-mihx0r2k-${i.toString(36)}`, method: 'GET', path: '/bench/durable', params: {},
  events: [{ id: 'bench_durable', bindings: {} }],
  request: { query: {}, headers: { host: '127.0.0.1:5985', connection: 'keep-alive' }, body: null },
});

interface Scenario { name: string; docs: (seq: number, prev?: { id: string; rev: string }) => object[] }
/** A journal batch as the journal writes it: its entries as one JSON text (src/core/durable-store.ts). */
const batch = (n: number, seq: number) => ({ _id: `batch-${seq}`, type: 'durable', owner: 'bench/1', accepted: Date.now(), entriesJson: JSON.stringify(Array.from({ length: n }, (_, i) => entry(i))) });
/** The same batch as earlier versions wrote it: an array of entries. */
const arrayBatch = (n: number, seq: number) => ({ _id: `batch-${seq}`, type: 'durable', owner: 'bench/1', accepted: Date.now(), entries: Array.from({ length: n }, (_, i) => entry(i)) });
const scenarios: Scenario[] = [
  { name: '1 entry', docs: (seq) => [batch(1, seq)] },
  { name: '25 entries', docs: (seq) => [batch(25, seq)] },
  { name: '100 entries', docs: (seq) => [batch(100, seq)] },
  { name: '25 entries + deletion', docs: (seq, prev) => [batch(25, seq), ...(prev ? [{ _id: prev.id, _rev: prev.rev, _deleted: true }] : [])] },
  { name: '25 entries as an array (before) + deletion', docs: (seq, prev) => [arrayBatch(25, seq), ...(prev ? [{ _id: prev.id, _rev: prev.rev, _deleted: true }] : [])] },
  { name: '100 documents', docs: (seq) => Array.from({ length: 100 }, (_, i) => ({ _id: `doc-${seq}-${i}`, n: i })) },
];

let seq = 0;
async function measure(store: EmbeddedStore, s: Scenario): Promise<{ msPerWrite: number; storeCpuMsPerWrite: number }> {
  const { base, headers } = target(store);
  const cpu0 = storeCpuMs(store);
  const t0 = performance.now();
  let writes = 0;
  let prev: { id: string; rev: string } | undefined;
  while (performance.now() - t0 < seconds * 1000) {
    const res = await request(`${base}/_bulk_docs`, { method: 'POST', headers, body: JSON.stringify({ docs: s.docs(seq++, prev) }) });
    const text = await res.body.text();
    if (res.statusCode !== 201) throw new Error(`_bulk_docs answered ${res.statusCode}: ${text}`);
    prev = (JSON.parse(text) as Array<{ id: string; rev: string }>)[0];
    writes++;
  }
  return { msPerWrite: +((performance.now() - t0) / writes).toFixed(2), storeCpuMsPerWrite: +((storeCpuMs(store) - cpu0) / writes).toFixed(2) };
}

try {
  for (const store of Object.values(stores)) {
    const { base, headers } = target(store);
    await (await request(base, { method: 'PUT', headers })).body.dump();
  }
  const rows: Array<{ write: string; lane: number; express: number; ratio: number }> = [];
  for (let round = 0; round < 2; round++) {
    for (const s of scenarios) {
      const lane = await measure(stores.lane, s);
      const express = await measure(stores.express, s);
      const ratio = +(lane.storeCpuMsPerWrite / express.storeCpuMsPerWrite).toFixed(2);
      if (round === 1) rows.push({ write: s.name, lane: lane.storeCpuMsPerWrite, express: express.storeCpuMsPerWrite, ratio });
      console.log(`${round === 0 ? 'warm-up ' : ''}${s.name}: store CPU per write ${lane.storeCpuMsPerWrite} ms direct lane, ${express.storeCpuMsPerWrite} ms through express-pouchdb (${ratio}); wall ${lane.msPerWrite} and ${express.msPerWrite} ms`);
    }
  }
  console.log(JSON.stringify({ seconds, rows }));
} finally {
  await Promise.all(Object.values(stores).map((s) => s.stop()));
  for (const d of dataDirs) rmSync(d, { recursive: true, force: true });
}
