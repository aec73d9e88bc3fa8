/**
 * `npm run bench:workers-rss`: what 100 distinct warm node workers and 1,000 events add to the
 * runtime's memory. A runtime (bench/target.ts, embedded store in memory, bench/app deployed) is
 * measured at rest, then 100 workers, each its own code (so each its own bundle and module in
 * every thread that ran it), and 1,000 events (ten HTTP paths per worker) are written through the
 * runtime's proxy; every event is fired `rounds` times with ?wait=true, which warms each worker in
 * the threads that served it, and the runtime is measured again after it settles.
 *
 * RSS is read from /proc/<pid>/status: RssAnon (memory the process holds: heaps of the main
 * thread and of every worker thread, bundles, code) and RssFile (mapped files: node's binary and
 * libraries, shared with other processes). The goal counts the total. The store's child is
 * reported beside it: the documents themselves live there, not in the runtime.
 * Prints one JSON line and a short table.
 *   node --no-node-snapshot --import tsx bench/workers-rss.ts [workers=100] [events=1000] [rounds=3]
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { request } from 'undici';
import { startTarget, status, stopTarget } from './targets.ts';

const workers = Number(process.argv[2] ?? 100);
const events = Number(process.argv[3] ?? 1000);
const rounds = Number(process.argv[4] ?? 3);

interface Rss { anonMb: number; fileMb: number; totalMb: number }
function rss(pid: number): Rss {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  const anon = kb('RssAnon'), file = kb('RssFile') + kb('RssShmem');
  return { anonMb: +(anon / 1024).toFixed(1), fileMb: +(file / 1024).toFixed(1), totalMb: +((anon + file) / 1024).toFixed(1) };
}
const diff = (a: Rss, b: Rss): Rss => ({ anonMb: +(b.anonMb - a.anonMb).toFixed(1), fileMb: +(b.fileMb - a.fileMb).toFixed(1), totalMb: +(b.totalMb - a.totalMb).toFixed(1) });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// on the embedded store, in memory, whatever this shell's BENCH_COUCH_URL says
const t = await startTarget('runtime', { env: { BENCH_COUCH_URL: '' } });
try {
  const auth = { authorization: t.auth!, 'content-type': 'application/json' };
  const post = async (path: string, body: unknown) => {
    const res = await request(`${t.url}${path}`, { method: 'POST', headers: auth, body: JSON.stringify(body) });
    const text = await res.body.text();
    if (res.statusCode >= 300) throw new Error(`POST ${path}: ${res.statusCode} ${text}`);
    return JSON.parse(text) as Array<{ ok?: boolean; error?: string }>;
  };
  const fire = async (path: string) => {
    const res = await request(`${t.url}/_events${path}?wait=true`);
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`${path}: ${res.statusCode} ${text}`);
  };
  const st = await status(t);
  const storePid = st.store?.pid;
  // the bench app's own worker, warm in both threads, so "at rest" already has the pool and one bundle
  for (let i = 0; i < 8; i++) await fire('/bench/thread');
  await sleep(2_000);
  const before = { runtime: rss(t.proc.pid!), store: storePid ? rss(storePid) : undefined };

  const code = (i: number) => `const kName = ${JSON.stringify(`worker ${i}`)};\nmodule.exports = async (msg) => ({ name: kName, n: msg.parameters.n ?? ${i} });\n`;
  const workerDocs = Array.from({ length: workers }, (_, i) => ({
    _id: `rss_w${i}`, type: 'node', delegate: 'index.js', idle: 3_600,
    _attachments: { 'index.js': { content_type: 'application/javascript', data: Buffer.from(code(i)).toString('base64') } },
  }));
  const eventDocs = Array.from({ length: events }, (_, k) => ({ _id: `rss_e${k}`, trigger: { [`/rss/${k % workers}/${k}`]: {} }, workers: { [`rss_w${k % workers}`]: {} } }));
  for (const [db, docs] of [['lively_workers', workerDocs], ['lively_events', eventDocs]] as const) {
    for (let i = 0; i < docs.length; i += 250) {
      const rows = await post(`/${db}/_bulk_docs`, { docs: docs.slice(i, i + 250) });
      const bad = rows.filter((r) => !r.ok);
      if (bad.length) throw new Error(`${db}: ${JSON.stringify(bad[0])}`);
    }
  }
  // the events are loaded once the last one fires (an unknown path is a 404)
  for (let tries = 0; ; tries++) {
    const res = await request(`${t.url}/_events/rss/${(events - 1) % workers}/${events - 1}?wait=true`);
    await res.body.text();
    if (res.statusCode === 200) break;
    if (tries > 600) throw new Error(`the events were not loaded: ${res.statusCode}`);
    await sleep(50);
  }
  const began = performance.now();
  for (let r = 0; r < rounds; r++) {
    // eight at a time, so both threads serve every worker
    for (let k = 0; k < events; k += 8) await Promise.all(Array.from({ length: Math.min(8, events - k) }, (_, j) => fire(`/rss/${(k + j) % workers}/${k + j}`)));
  }
  const fireSeconds = (performance.now() - began) / 1000;
  await sleep(3_000);
  const after = { runtime: rss(t.proc.pid!), store: storePid ? rss(storePid) : undefined };
  const s = await status(t) as unknown as { dispatchers?: Array<{ name: string; warm?: number; revisions?: number }> };
  const thread = s.dispatchers?.find((d) => d.name === 'thread');
  const result = {
    machine: `${os.cpus()[0]?.model} x${os.cpus().length}, node ${process.version}`,
    workers, events, firesPerEvent: rounds, fireSeconds: +fireSeconds.toFixed(1),
    threadDispatcher: thread,
    runtime: { before: before.runtime, after: after.runtime, added: diff(before.runtime, after.runtime) },
    ...(before.store && after.store ? { store: { before: before.store, after: after.store, added: diff(before.store, after.store) } } : {}),
  };
  console.log(`runtime RSS ${before.runtime.totalMb} → ${after.runtime.totalMb} MB: +${result.runtime.added.totalMb} MB (anon +${result.runtime.added.anonMb}, file +${result.runtime.added.fileMb}) for ${workers} warm workers and ${events} events`);
  if (result.store) console.log(`store RSS ${result.store.before.totalMb} → ${result.store.after.totalMb} MB: +${result.store.added.totalMb} MB`);
  console.log(JSON.stringify(result));
} finally {
  await stopTarget(t);
}
