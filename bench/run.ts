/**
 * `npm run bench`: every way of answering a trigger, measured side by side in one run with
 * one load generator (autocannon, in this process; each server in its own process).
 * Rounds alternate between scenarios so machine noise spreads over all of them; medians
 * are reported, and ratios are computed from those medians. Output: JSON in
 * bench/results/latest.json and a markdown table on stdout (pasted into the README).
 *
 * (d) is the runtime's own process worker (node, `isolation: "process"`); d0 is the minimal
 * stand-in that measured (d) before process workers existed, kept for reference. a1 and c1 are
 * single-connection latency in µs (see `sequential`), not autocannon.
 *
 * Environment:
 *   BENCH_ROUNDS=3     rounds; every chosen scenario runs once per round
 *   BENCH_SECONDS=5    seconds per scenario and round
 *   BENCH_ONLY=a,c,d   only these scenario keys (a b c bs cs bn cn db dw c0 d d0 py dp pyp iso f fb e a1 f1 c1n c1 cC bC c1C r r1)
 *   BENCH_SCRIPTS=off  skip bench/coldstart.ts and bench/changes.ts after the scenarios
 *   BENCH_COUCH_URL=<admin url>  a second runtime on that CouchDB (databases under a prefix of
 *                      their own, dropped at the end) for cC, bC and c1C: (c), (b) and c1 there;
 *                      every other target stays on its embedded store
 * Quick run: BENCH_ROUNDS=1 BENCH_SECONDS=2 BENCH_ONLY=a,c,d,d0,a1,c1 BENCH_SCRIPTS=off npm run bench
 * Console: BENCH_ONLY=b,bs,c,cs (bs/cs: b and c with a console's live stream open)
 * Endpoints: BENCH_ONLY=c,r,a1,r1 (r/c: an endpoint against ?wait=true; r1 against a1: the single-connection gap)
 * One connection: BENCH_ONLY=a1,f1,c1,c1n (f1: the floor's own hop to a thread; c1n: c1 keeping no records)
 * CouchDB: BENCH_COUCH_URL=… BENCH_ONLY=c,cC,b,bC,a1,c1,c1C (cC/c: HTTP triggers with records on CouchDB against the embedded store)
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import autocannon from 'autocannon';
import { Client, request } from 'undici';
import { drained, startTarget, status, stopTarget, type Target } from './targets.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = 50;
/** Read once and removed, so that only the CouchDB target sees it. */
const COUCH_URL = process.env.BENCH_COUCH_URL;
delete process.env.BENCH_COUCH_URL;
/** Sequential requests before each single-connection measurement, on its fresh connection. */
const WARMUP_MS = 1_000;

/** p50/p99 in ms (whole ms from autocannon); the single-connection scenarios also give them in µs. */
interface Sample { rps: number; p50: number; p99: number; p50us?: number; p99us?: number; errors: number; non2xx: number }

async function load(url: string, seconds: number, connections: number): Promise<Sample> {
  const r = await autocannon({ url, connections, duration: seconds, pipelining: 1 });
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx };
}

/**
 * Single-connection latency, precisely: autocannon's percentiles are whole milliseconds, too
 * coarse for a target of 0.15 ms. One keep-alive connection, one request at a time for
 * `seconds` after a warm-up, each timed with process.hrtime.bigint(); p50 and p99 in µs.
 * The client is undici's Client (pipelining 1) rather than node:http with a keep-alive Agent
 * (maxSockets 1): against the bare server on the benchmark machine it spent about 30 µs of CPU
 * per request against about 45 µs, and its p50 was about 15 µs lower — the less the client
 * costs, the less of it is in every figure and on the cores the servers share with it.
 */
async function sequential(url: string, seconds: number): Promise<Sample> {
  const u = new URL(url);
  const path = u.pathname + u.search;
  const client = new Client(u.origin, { pipelining: 1 });
  let errors = 0;
  let non2xx = 0;
  const once = async (): Promise<void> => {
    try {
      const { statusCode, body } = await client.request({ path, method: 'GET' });
      await body.dump();
      if (statusCode < 200 || statusCode > 299) non2xx++;
    } catch {
      errors++;
    }
  };
  try {
    for (const warm = performance.now() + WARMUP_MS; performance.now() < warm;) await once();
    errors = non2xx = 0;
    let us = new Float64Array(100_000);
    let n = 0;
    const t0 = performance.now();
    const end = t0 + seconds * 1000;
    while (performance.now() < end) {
      const start = process.hrtime.bigint();
      await once();
      const took = Number(process.hrtime.bigint() - start) / 1e3;
      if (n === us.length) { const grown = new Float64Array(n * 2); grown.set(us); us = grown; }
      us[n++] = took;
    }
    const elapsed = (performance.now() - t0) / 1000;
    const sorted = us.subarray(0, n).sort();
    const at = (q: number) => sorted[Math.min(n - 1, Math.floor(q * n))]!;
    const p50us = +at(0.5).toFixed(1);
    const p99us = +at(0.99).toFixed(1);
    return { rps: n / elapsed, p50: +(p50us / 1000).toFixed(3), p99: +(p99us / 1000).toFixed(3), p50us, p99us, errors, non2xx };
  } finally {
    await client.close();
  }
}

/** Fire-and-forget: triggers *processed* per second, counted once the queue has drained. */
async function processed(t: Target, path: string, seconds: number): Promise<Sample> {
  const before = (await status(t)).activations;
  const t0 = performance.now();
  const s = await load(t.url + path, seconds, CONNECTIONS);
  const after = (await drained(t)).activations;
  const elapsed = (performance.now() - t0) / 1000;
  return { ...s, rps: (after.completed - before.completed) / elapsed };
}

/** A bench script in its own process (after the load targets are gone); its last stdout line is its JSON result. */
async function script(name: string): Promise<unknown> {
  const proc = spawn(process.execPath, ['--no-node-snapshot', '--import', 'tsx', new URL(name, import.meta.url).pathname], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout!.on('data', (d) => { out += d; });
  await new Promise((r) => proc.once('exit', r));
  return JSON.parse(out.trim().split('\n').pop()!);
}

/**
 * `run` with a web console's live stream open on the runtime (GET /_lively/stream, read to the
 * end as a browser would): what an open console costs the trigger rate.
 */
async function withConsole(t: Target, run: () => Promise<Sample>): Promise<Sample> {
  const ac = new AbortController();
  const res = await request(`${t.url}/_lively/stream`, { headers: t.auth ? { authorization: t.auth } : {}, signal: ac.signal });
  if (res.statusCode !== 200) throw new Error(`the console stream answered ${res.statusCode}`);
  let bytes = 0;
  const reading = (async () => {
    try { for await (const chunk of res.body) bytes += (chunk as Buffer).length; } catch { /* aborted */ }
  })();
  try {
    return await run();
  } finally {
    ac.abort();
    await reading;
    if (bytes === 0) throw new Error('the console stream sent nothing');
  }
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };

async function main(): Promise<void> {
  // The servers under test, started once the scenarios to run are known.
  const t = {} as Record<'bare' | 'rt' | 'quiet' | 'persistent' | 'fresh' | 'floor' | 'floor202' | 'couch', Target>;
  const scenarios: Array<{ key: string; label: string; run: () => Promise<Sample> }> = [
    { key: 'a', label: '(a) bare node:http, 200', run: () => load(t.bare.url, SECONDS, CONNECTIONS) },
    { key: 'b', label: '(b) /_events, thread worker, fire-and-forget (processed/s)', run: () => processed(t.rt, '/_events/bench/thread', SECONDS) },
    { key: 'c', label: '(c) /_events, thread worker, ?wait=true', run: () => load(`${t.rt.url}/_events/bench/thread?wait=true`, SECONDS, CONNECTIONS) },
    // Next to (b) and (c) in every round: the same triggers with a console's live stream open.
    { key: 'bs', label: '(b) the same, a web console\'s live stream open (processed/s)', run: () => withConsole(t.rt, () => processed(t.rt, '/_events/bench/thread', SECONDS)) },
    { key: 'cs', label: '(c) the same, a web console\'s live stream open', run: () => withConsole(t.rt, () => load(`${t.rt.url}/_events/bench/thread?wait=true`, SECONDS, CONNECTIONS)) },
    { key: 'bn', label: '(b) the same, no activation records', run: () => processed(t.quiet, '/_events/bench/thread', SECONDS) },
    { key: 'cn', label: '(c) the same, no activation records', run: () => load(`${t.quiet.url}/_events/bench/thread?wait=true`, SECONDS, CONNECTIONS) },
    { key: 'db', label: '(b) durable: the same event stored before its 202, fire-and-forget (processed/s)', run: () => processed(t.rt, '/_events/bench/durable', SECONDS) },
    { key: 'dw', label: '(c) durable: the same event stored before it runs, ?wait=true', run: () => load(`${t.rt.url}/_events/bench/durable?wait=true`, SECONDS, CONNECTIONS) },
    { key: 'c0', label: '(c0) /_events, no worker: a dispatcher that answers at once, ?wait=true', run: () => load(`${t.rt.url}/_events/bench/noop?wait=true`, SECONDS, CONNECTIONS) },
    // (d) as the thread pool's acceptance text defines it: a kept child process per worker fed JSON
    // lines on stdin (the 2010 design once warm), now that the runtime has process workers.
    { key: 'd', label: '(d) /_events, process worker (node, isolation "process": kept children fed JSON lines), ?wait=true', run: () => load(`${t.rt.url}/_events/bench/process?wait=true`, SECONDS, CONNECTIONS) },
    { key: 'd0', label: '(d0) minimal stand-in for (d), no runtime around it: bare node:http feeding one child JSON lines', run: () => load(t.persistent.url, SECONDS, CONNECTIONS) },
    { key: 'py', label: '/_events, python process worker, ?wait=true', run: () => load(`${t.rt.url}/_events/bench/python?wait=true`, SECONDS, CONNECTIONS) },
    // The same two workers written with the helpers, declaring {"pipeline": 16}, 2 processes for 64 messages at once.
    { key: 'dp', label: '(d) the same node worker with serve(): pipelined, ?wait=true', run: () => load(`${t.rt.url}/_events/bench/process_pipe?wait=true`, SECONDS, CONNECTIONS) },
    { key: 'pyp', label: 'the same python worker with messages(pipeline=16), ?wait=true', run: () => load(`${t.rt.url}/_events/bench/python_pipe?wait=true`, SECONDS, CONNECTIONS) },
    { key: 'iso', label: '/_events, isolate worker, ?wait=true', run: () => load(`${t.rt.url}/_events/bench/isolate?wait=true`, SECONDS, CONNECTIONS) },
    // The floor of the design: the same hop to two worker threads with nothing of the runtime
    // around it (bench/floor.ts), what (c) and (b) can at best reach on this machine.
    { key: 'f', label: '(f) floor for (c): node:http + 2 worker threads over MessagePorts, batched per turn, no runtime', run: () => load(t.floor.url, SECONDS, CONNECTIONS) },
    { key: 'fb', label: '(fb) floor for (b): the same answering 202 at once (processed/s)', run: () => processed(t.floor202, '/', SECONDS) },
    { key: 'e', label: '(e) fresh node process per trigger (2010 cold)', run: () => load(t.fresh.url, Math.min(SECONDS, 3), 4) },
    // Next to each other in every round, so both see the same moment of the machine.
    { key: 'a1', label: '(a) bare, 1 keep-alive connection, sequential requests (p50/p99 per request, µs precision)', run: () => sequential(t.bare.url, SECONDS) },
    { key: 'f1', label: '(f) floor, 1 keep-alive connection, sequential requests (p50/p99 per request, µs precision)', run: () => sequential(t.floor.url, SECONDS) },
    { key: 'c1n', label: '(c) a runtime keeping no activation records, 1 keep-alive connection, sequential requests (p50/p99 per request, µs precision)', run: () => sequential(`${t.quiet.url}/_events/bench/thread?wait=true`, SECONDS) },
    { key: 'c1', label: '(c) thread worker ?wait=true, 1 keep-alive connection, sequential requests (p50/p99 per request, µs precision)', run: () => sequential(`${t.rt.url}/_events/bench/thread?wait=true`, SECONDS) },
    // An endpoint (an event with "response"): the same thread worker as (c), its result the response
    // body ({"ok":true,"n":null}); next to (c) and (a1) so the ratio and the gap see the same moment.
    { key: 'r', label: '(r) endpoint: the same thread worker, its result the response ("response")', run: () => load(`${t.rt.url}/_events/bench/endpoint`, SECONDS, CONNECTIONS) },
    // The same runtime on a CouchDB (BENCH_COUCH_URL): records, state and the app there.
    { key: 'cC', label: '(c) the same on CouchDB (BENCH_COUCH_URL), records on', run: () => load(`${t.couch.url}/_events/bench/thread?wait=true`, SECONDS, CONNECTIONS) },
    { key: 'bC', label: '(b) the same on CouchDB (BENCH_COUCH_URL), records on (processed/s)', run: () => processed(t.couch, '/_events/bench/thread', SECONDS) },
    { key: 'c1C', label: '(c) on CouchDB, 1 keep-alive connection, sequential requests (p50/p99 per request, µs precision)', run: () => sequential(`${t.couch.url}/_events/bench/thread?wait=true`, SECONDS) },
    { key: 'r1', label: '(r) endpoint, 1 keep-alive connection, sequential requests (p50/p99 per request, µs precision)', run: () => sequential(`${t.rt.url}/_events/bench/endpoint`, SECONDS) },
  ];
  const only = process.env.BENCH_ONLY?.split(',').map((k) => k.trim()).filter(Boolean);
  // A key that names no scenario (a typo, or one renamed since) would otherwise just measure less.
  const unknown = only?.filter((k) => !scenarios.some((s) => s.key === k)) ?? [];
  if (unknown.length) throw new Error(`BENCH_ONLY: unknown scenario ${unknown.join(', ')}; known: ${scenarios.map((s) => s.key).join(', ')}`);
  // the CouchDB scenarios (keys ending in C) run by default only when there is a CouchDB
  const chosen = only ? scenarios.filter((s) => only.includes(s.key)) : scenarios.filter((s) => COUCH_URL || !s.key.endsWith('C'));
  t.bare = await startTarget('bare');
  t.rt = await startTarget('runtime');
  // The same runtime writing no activation records: what logging costs.
  t.quiet = await startTarget('runtime', { env: { BENCH_RECORDS: 'off' } });
  t.persistent = await startTarget('persistent');
  t.fresh = await startTarget('fresh');
  t.floor = await startTarget('floor');
  t.floor202 = await startTarget('floor202');
  if (chosen.some((s) => s.key.endsWith('C'))) {
    if (!COUCH_URL) throw new Error('cC, bC and c1C run on a CouchDB: set BENCH_COUCH_URL to its admin URL');
    t.couch = await startTarget('runtime', { env: { BENCH_COUCH_URL: COUCH_URL } });
    await (await request(`${t.couch.url}/_events/bench/thread?wait=true`)).body.text();
  }
  // Warm every worker so cold starts are not in the throughput figures: a few triggers at once,
  // so a process worker's pool (up to its concurrency) has all its children before (d) runs.
  for (const p of ['thread', 'process', 'python', 'process_pipe', 'python_pipe', 'isolate', 'noop', 'durable', 'endpoint']) {
    await Promise.all(Array.from({ length: 4 }, async () => {
      const res = await request(`${t.rt.url}/_events/bench/${p}${p === 'endpoint' ? '' : '?wait=true'}`);
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`warm-up of ${p} failed: ${res.statusCode} ${text}`);
    }));
  }
  await (await request(`${t.quiet.url}/_events/bench/thread?wait=true`)).body.text();
  const samples = new Map<string, Sample[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const s of chosen) {
      const r = await s.run();
      (samples.get(s.key) ?? samples.set(s.key, []).get(s.key)!).push(r);
      const lat = r.p50us === undefined ? `p50 ${r.p50} ms p99 ${r.p99} ms` : `p50 ${r.p50us} µs p99 ${r.p99us} µs`;
      process.stderr.write(`round ${round + 1} ${s.key}: ${Math.round(r.rps)} req/s ${lat}${r.errors || r.non2xx ? ` errors ${r.errors} non2xx ${r.non2xx}` : ''}\n`);
    }
  }
  await Promise.all(Object.values(t).map(stopTarget));
  const scripts = process.env.BENCH_SCRIPTS !== 'off';
  const cold = scripts ? await script('./coldstart.ts') : 'skipped (BENCH_SCRIPTS=off)';
  // changes-trigger lag and throughput on the embedded store
  const changes = scripts ? await script('./changes.ts') : 'skipped (BENCH_SCRIPTS=off)';
  const result: Record<string, { label: string; rps: number; p50: number; p99: number; p50us?: number; p99us?: number; errors: number }> = {};
  for (const s of chosen) {
    const xs = samples.get(s.key)!;
    const us = xs[0]!.p50us === undefined ? {} : { p50us: median(xs.map((x) => x.p50us!)), p99us: median(xs.map((x) => x.p99us!)) };
    result[s.key] = { label: s.label, rps: Math.round(median(xs.map((x) => x.rps))), p50: median(xs.map((x) => x.p50)), p99: median(xs.map((x) => x.p99)), ...us, errors: xs.reduce((n, x) => n + x.errors + x.non2xx, 0) };
  }
  // The target "with a single connection, the p50 latency of (c) within 0.15 ms of (a)'s".
  const p50Gap = result.c1?.p50us !== undefined && result.a1?.p50us !== undefined ? Math.round(result.c1.p50us - result.a1.p50us) : undefined;
  const endpointGap = result.r1?.p50us !== undefined && result.a1?.p50us !== undefined ? Math.round(result.r1.p50us - result.a1.p50us) : undefined;
  const ratio = (x: string, y: string) => (result[x] && result[y] ? +(result[x]!.rps / result[y]!.rps).toFixed(2) : undefined);
  const ratios = { 'c/d': ratio('c', 'd'), 'c/d0': ratio('c', 'd0'), 'd/d0': ratio('d', 'd0'), 'dp/d0': ratio('dp', 'd0'), 'py/d0': ratio('py', 'd0'), 'pyp/d0': ratio('pyp', 'd0'), 'iso/c': ratio('iso', 'c'), 'c/a': ratio('c', 'a'), 'b/a': ratio('b', 'a'), 'durable db/b': ratio('db', 'b'), 'records b/bn': ratio('b', 'bn'), 'records c/cn': ratio('c', 'cn'), 'f/a': ratio('f', 'a'), 'fb/a': ratio('fb', 'a'), 'c/f': ratio('c', 'f'), 'b/fb': ratio('b', 'fb'), 'durable dw/c': ratio('dw', 'c'), 'CouchDB cC/c': ratio('cC', 'c'), 'CouchDB bC/b': ratio('bC', 'b'), 'p50(c1)-p50(a1) ms': p50Gap === undefined ? undefined : +(p50Gap / 1000).toFixed(3), 'p50(c1)-p50(a1) µs': p50Gap, 'endpoint r/c': ratio('r', 'c'), 'console bs/b': ratio('bs', 'b'), 'console cs/c': ratio('cs', 'c'), 'p50(r1)-p50(a1) µs': endpointGap };
  const machine = { cpus: os.cpus().length, model: os.cpus()[0]?.model, memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, rounds: ROUNDS, seconds: SECONDS, connections: CONNECTIONS };
  mkdirSync(new URL('./results', import.meta.url), { recursive: true });
  writeFileSync(new URL('./results/latest.json', import.meta.url), JSON.stringify({ machine, result, ratios, coldStart: cold, changesTrigger: changes }, null, 2));
  const lines = ['| scenario | req/s (median) | p50 ms | p99 ms |', '|---|---:|---:|---:|'];
  for (const r of Object.values(result)) lines.push(`| ${r.label} | ${r.rps} | ${r.p50} | ${r.p99} |${r.errors ? ` (${r.errors} errors)` : ''}`);
  const one = (k: string, name: string) => (result[k] ? [`${name} p50 ${result[k]!.p50us} µs, p99 ${result[k]!.p99us} µs`] : []);
  const single = [...one('a1', '(a) bare'), ...one('c1', '(c) thread worker ?wait=true'), ...(p50Gap === undefined ? [] : [`p50 difference ${p50Gap} µs (${(p50Gap / 1000).toFixed(3)} ms)`]),
    ...one('c1C', '(c) on CouchDB'),
    ...one('r1', '(r) endpoint'), ...(endpointGap === undefined ? [] : [`endpoint p50 difference ${endpointGap} µs (${(endpointGap / 1000).toFixed(3)} ms)`])];
  process.stdout.write(`${JSON.stringify(machine)}\n\n${lines.join('\n')}\n\nratios: ${JSON.stringify(ratios)}\n${single.length ? `single connection (one keep-alive connection, sequential requests, per-request latency, medians over rounds): ${single.join('; ')}\n` : ''}cold start (new revision to first completed message): ${JSON.stringify(cold)}\nchanges trigger (embedded store, trivial node worker): ${JSON.stringify(changes)}\n`);
}

main().catch((err) => { console.error(err); process.exit(1); });
