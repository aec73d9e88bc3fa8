/**
 * `npm run bench:store-client`: what one store write costs the runtime's own process, by the
 * client that sends it. The same document (a durable-journal-shaped batch of 20 entries, its JSON
 * made once per write) is PUT to an embedded store in memory through nano's request (fetch) and
 * through `sendJson` (undici's request, what activation records and the durable journal use),
 * four at a time, alternating, 3 rounds of 1,500 each after a warm-up; this process's CPU time
 * (process.cpuUsage) per request, and the wall time. The store's own CPU is not in it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { builtStore } from './built-store.ts';
import { connect, sendJson } from '../src/store/couch.ts';
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lc-sendcost-'));
const store = await builtStore({ dataDir, memory: true });
await store.start();
const server = connect(store.url);
await server.db.create('cost');
const doc = (i: number) => JSON.stringify({ _id: `d${i}`, entries: Array.from({ length: 20 }, (_, k) => ({ activation: `a${i}-${k}`, event: 'e', at: Date.now(), request: { query: {}, headers: {}, body: { n: k } } })) });
const viaNano = (i: number) => server.request({ db: 'cost', doc: `n${i}`, method: 'PUT', body: doc(i), dontStringify: true, headers: { 'content-type': 'application/json' } } as never);
const viaUndici = (i: number) => sendJson(server, 'PUT', { db: 'cost', doc: `u${i}` }, doc(i));
let n = 0;
async function run(name: string, f: (i: number) => Promise<unknown>, count: number, par: number) {
  const c0 = process.cpuUsage(); const t0 = performance.now();
  for (let i = 0; i < count; i += par) await Promise.all(Array.from({ length: par }, () => f(n++)));
  const c = process.cpuUsage(c0); const ms = performance.now() - t0;
  return { name, cpuUsPerReq: +((c.user + c.system) / count).toFixed(1), wallMsPerReq: +(ms / count).toFixed(3) };
}
await run('warm nano', viaNano, 300, 4); await run('warm undici', viaUndici, 300, 4);
for (let r = 0; r < 3; r++) { console.log(JSON.stringify(await run('nano', viaNano, 1500, 4))); console.log(JSON.stringify(await run('undici', viaUndici, 1500, 4))); }
await store.stop();
// the store's folder goes with the run
rmSync(dataDir, { recursive: true, force: true });
