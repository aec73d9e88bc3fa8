/**
 * `npm run bench:store -- [seconds]`: what one `_bulk_docs` write costs the embedded store, by
 * the size of the document written. One durable-journal-shaped batch document per write, with
 * 1, 25 or 100 entries, written one at a time for `seconds` each (default 3; sizes in turn, two
 * rounds, the first a warm-up), against the store alone (in memory, as in `npm run bench`).
 * Prints per write the wall time and the store process's CPU time (from /proc). Linux only.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { EmbeddedStore } from '../src/store/embedded/supervisor.ts';

const seconds = Number(process.argv[2] ?? 3);
const store = new EmbeddedStore({ dataDir: mkdtempSync(path.join(os.tmpdir(), 'lively-bench-store-')), memory: true });
await store.start();
const u = new URL(store.url);
const headers = {
  authorization: 'Basic ' + Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64'),
  'content-type': 'application/json',
};
const base = `${u.protocol}//${u.host}/bench_journal`;

/** utime + stime of the store process, in ms. */
function storeCpuMs(): number {
  const stat = readFileSync(`/proc/${store.pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

const entry = (i: number) => ({
  activation: `a1b2c3d4-mihx0r2k-${i.toString(36)}`, method: 'GET', path: '/bench/durable', params: {},
  events: [{ id: 'bench_durable', bindings: {} }],
  request: { query: {}, headers: { host: '127.0.0.1:5985', connection: 'keep-alive' }, body: null },
});

try {
  await (await request(base, { method: 'PUT', headers })).body.dump();
  let seq = 0;
  const rows: Array<{ entries: number; writes: number; msPerWrite: number; storeCpuMsPerWrite: number }> = [];
  for (let round = 0; round < 2; round++) {
    for (const n of [1, 25, 100]) {
      const cpu0 = storeCpuMs();
      const t0 = performance.now();
      let writes = 0;
      while (performance.now() - t0 < seconds * 1000) {
        const doc = { _id: `batch-${seq++}`, type: 'durable', owner: 'bench/1', accepted: Date.now(), entries: Array.from({ length: n }, (_, i) => entry(i)) };
        const res = await request(`${base}/_bulk_docs`, { method: 'POST', headers, body: JSON.stringify({ docs: [doc] }) });
        if (res.statusCode !== 201) throw new Error(`_bulk_docs answered ${res.statusCode}: ${await res.body.text()}`);
        await res.body.dump();
        writes++;
      }
      const row = { entries: n, writes, msPerWrite: +((performance.now() - t0) / writes).toFixed(2), storeCpuMsPerWrite: +((storeCpuMs() - cpu0) / writes).toFixed(2) };
      if (round === 1) rows.push(row);
      console.log(`${round === 0 ? 'warm-up ' : ''}entries ${n}: ${row.msPerWrite} ms per write, store CPU ${row.storeCpuMsPerWrite} ms per write`);
    }
  }
  console.log(JSON.stringify({ seconds, rows }));
} finally {
  await store.stop();
}
