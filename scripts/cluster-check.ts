/**
 * `npm run cluster-check`: several runtimes on a real 3-node CouchDB cluster
 * (../shared/couchdb/couchdb-cluster.sh, or COUCHDB_CLUSTER_SCRIPT), each on its own node, a 1 s
 * schedule and a changes trigger; workers append a line per message to a file, so what fired is
 * seen without the runtimes. For 2 and then 3 runtimes:
 *   1. all live: 500 changes and 30 s of ticks: every change once, every tick once;
 *   2. SIGKILL the runtime following the changes: another takes over, no change missed, no tick twice;
 *   3. SIGKILL a CouchDB node that is not the state database's (a runtime's own node): no tick
 *      twice, none lost for long, the changes trigger catches up; the node restarts;
 *   4. SIGKILL the state database's node: nothing fires twice, ticks stop until it is back, then
 *      everything catches up.
 * Exits 1 on any failure; 0 with a "SKIPPED" line only when the cluster cannot start.
 * Env: CLUSTER_CHECK_RUNTIMES="2 3" (which scenarios), CLUSTER_CHECK_LEASE_MS (3000).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { connect } from '../src/store/couch.ts';
import { placement } from '../src/store/state-db.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const main = path.join(here, '../src/cli/main.ts');
// shared/ stands beside the checkout (../shared from its root), as on every machine and in CI
const clusterScript = process.env.COUCHDB_CLUSTER_SCRIPT ?? path.join(here, '../../shared/couchdb/couchdb-cluster.sh');
const kLeaseMs = Number(process.env.CLUSTER_CHECK_LEASE_MS ?? 3_000);
const scenarios = (process.env.CLUSTER_CHECK_RUNTIMES ?? '2 3').split(/\s+/).filter(Boolean).map(Number);
const clusterDir = process.env.COUCHDB_CLUSTER_DIR ?? path.join(process.env.TMPDIR ?? '/tmp', 'couchdb-cluster');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const failures: string[] = [];
const tmp: string[] = [];

function check(ok: boolean, what: string): void {
  console.log(`${ok ? '  ok  ' : '  FAIL'} ${what}`);
  if (!ok) failures.push(what);
}

function cluster(cmd: string): string {
  return execFileSync('bash', [clusterScript, cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 180_000 });
}

function nodePid(i: number): number | undefined {
  const f = path.join(clusterDir, `node${i + 1}`, 'var/run/couchdb.pid');
  return existsSync(f) ? Number(readFileSync(f, 'utf8').trim()) : undefined;
}

const att = (code: string) => ({ 'index.js': { content_type: 'application/javascript', data: Buffer.from(code).toString('base64') } });
const recorder = {
  _id: 'recorder', type: 'node', delegate: 'index.js', _attachments: att(`const fs = require('node:fs');
module.exports = async (msg) => {
  const key = msg.trigger === 'schedule' ? msg.tick.at : msg.parameters.id;
  fs.appendFileSync(msg.arguments.file, key + ' ' + process.pid + '\\n');
  return {};
};`),
};

interface Runtime { proc: ChildProcess; url: string; node: number; name: string }

async function startRuntime(couch: string, prefix: string, node: number, name: string): Promise<Runtime> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lively-cc-'));
  tmp.push(dataDir);
  const env = { ...process.env, LIVELY_LEASE_MS: String(kLeaseMs), LIVELY_CHANGES_CONCURRENCY: '50' };
  const proc = spawn(process.execPath, ['--no-node-snapshot', '--import', 'tsx', main, 'start', '--couch', couch, '--prefix', prefix,
    '--port', '0', '--data', dataDir, '--no-sample', '--log-level', 'error', '--threads', '1'], { env, stdio: ['ignore', 'pipe', 'ignore'] });
  const url = await new Promise<string>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`runtime ${name} exited with ${code}`)));
    createInterface({ input: proc.stdout! }).on('line', (line) => { const m = /listening on (\S+)/.exec(line); if (m) resolve(m[1]!); });
  });
  return { proc, url, node, name };
}

async function kill(r: Runtime): Promise<void> {
  if (r.proc.exitCode !== null || r.proc.signalCode !== null) return;
  const gone = new Promise((res) => r.proc.once('exit', res));
  r.proc.kill('SIGKILL');
  await gone;
}

async function status(r: Runtime, couch: string): Promise<{ feeds: Array<{ event: string; state: string }>; schedules: Record<string, number>; anomalies: { total: number } } | undefined> {
  const u = new URL(couch);
  const authorization = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
  try {
    const res = await fetch(`${r.url}/_lively/status`, { headers: { authorization }, signal: AbortSignal.timeout(3_000) });
    return await res.json() as never;
  } catch { return undefined; }
}

function counts(file: string): Map<string, number> {
  const m = new Map<string, number>();
  if (!existsSync(file)) return m;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const key = line.split(' ')[0];
    if (key) m.set(key, (m.get(key) ?? 0) + 1);
  }
  return m;
}

/** Ticks (ms) that fell due in [from, to] and were not fired, and ticks fired more than once. */
function tickReport(file: string, from: number, to: number): { fired: number; missing: number[]; twice: string[] } {
  const c = counts(file);
  const missing: number[] = [];
  for (let t = Math.ceil(from / 1000) * 1000; t <= to; t += 1000) if (!c.has(new Date(t).toISOString())) missing.push(t);
  return { fired: c.size, missing, twice: [...c].filter(([, n]) => n > 1).map(([k]) => k) };
}

async function until(what: string, ms: number, fn: () => Promise<boolean> | boolean): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (await fn()) return true; await sleep(250); }
  console.log(`  (gave up waiting: ${what})`);
  return false;
}

async function scenario(urls: string[], n: number): Promise<void> {
  const prefix = `cc${Date.now().toString(36)}_`;
  const outDir = mkdtempSync(path.join(os.tmpdir(), 'lively-cc-out-'));
  tmp.push(outDir);
  const changesFile = path.join(outDir, 'changes.txt');
  const ticksFile = path.join(outDir, 'ticks.txt');
  const writer = connect(urls[urls.length - 1]!);
  const inbox = `${prefix}inbox`;
  const runtimes: Runtime[] = [];
  console.log(`\n== ${n} runtimes on ${n} nodes (lease ${kLeaseMs} ms) ==`);
  try {
    for (let i = 0; i < n; i++) runtimes.push(await startRuntime(urls[i]!, prefix, i, `r${i + 1}`));
    const shards = (await writer.request({ db: `${prefix}logs`, path: '_shards' })) as { shards: Record<string, string[]> };
    const stateNode = Number(/couchdb(\d+)@/.exec(Object.values(shards.shards)[0]![0]!)![1]) - 1;
    check(Object.keys(shards.shards).length === 1 && Object.values(shards.shards)[0]!.length === 1, `state database ${prefix}logs is one shard with one copy (on node ${stateNode + 1})`);
    await writer.db.create(inbox);
    const inboxPlacement = await placement(writer, inbox);
    check(inboxPlacement.copies === 3 && /q=1, n=1/.test(inboxPlacement.warning ?? ''), `a database with the cluster's defaults (${inboxPlacement.copies} copies) would be reported as a state database`);
    await writer.use(`${prefix}workers`).insert(recorder as never);
    await writer.use(`${prefix}events`).insert({ _id: 'on_change', trigger: { changes: { db: inbox } }, workers: { recorder: { file: changesFile } } } as never);
    await writer.use(`${prefix}events`).insert({ _id: 'tick', trigger: { schedule: { every: '1s' } }, workers: { recorder: { file: ticksFile } } } as never);
    const holder = async (): Promise<Runtime | undefined> => {
      for (const r of runtimes) if ((await status(r, urls[r.node]!))?.feeds.find((f) => f.event === 'on_change' && f.state === 'running')) return r;
      return undefined;
    };
    await until('a runtime follows the changes', 20_000, async () => (await holder()) !== undefined);
    let written = 0;
    const write = async (count: number, through = writer) => {
      const docs = Array.from({ length: count }, () => ({ _id: `m${String(written++).padStart(5, '0')}` }));
      await through.use(inbox).bulk({ docs });
    };
    const allSeen = (min: number) => until(`${written} changes seen`, 60_000, () => { const c = counts(changesFile); return c.size >= written && min <= c.size; });

    // 1. all live
    const t1 = Date.now();
    for (let i = 0; i < 20; i++) { await write(25); await sleep(1_000); }
    await sleep(Math.max(0, 30_000 - (Date.now() - t1)));
    await allSeen(written);
    let c = counts(changesFile);
    check(c.size === written && [...c.values()].every((v) => v === 1), `all live: ${c.size} of ${written} changes fired, ${[...c.values()].filter((v) => v > 1).length} more than once`);
    let ticks = tickReport(ticksFile, t1 + 1_000, Date.now() - 1_500);
    check(ticks.twice.length === 0 && ticks.missing.length === 0, `all live, 30 s: ${ticks.fired} ticks fired, ${ticks.twice.length} twice, ${ticks.missing.length} missing`);

    // 2. SIGKILL the runtime following the changes
    const h = await holder();
    if (!h) { check(false, 'a runtime follows the changes before the kill'); return; }
    const t2 = Date.now();
    await write(100); // killed while these are being fired
    await sleep(150);
    await kill(h);
    console.log(`  killed runtime ${h.name} (node ${h.node + 1}) with SIGKILL while it fired changes`);
    await write(100);
    await allSeen(written);
    c = counts(changesFile);
    const dup2 = [...c.values()].filter((v) => v > 1).length;
    check(c.size === written, `runtime killed: ${c.size} of ${written} changes fired (${dup2} twice in all: the batch in flight at the kill may run again, at most 50)`);
    check(dup2 <= 50, `at most one batch (50) ran twice after the kill: ${dup2}`);
    await sleep(3_000);
    ticks = tickReport(ticksFile, t2, Date.now() - 1_500);
    check(ticks.twice.length === 0, `runtime killed: no tick twice (${ticks.twice.length})`);
    check(ticks.missing.length === 0, `runtime killed: no tick lost (${ticks.missing.length} missing)`);
    runtimes[runtimes.indexOf(h)] = await startRuntime(urls[h.node]!, prefix, h.node, h.name);

    // 3. SIGKILL a runtime's CouchDB node that is not the state database's
    const victim = runtimes.map((r) => r.node).find((i) => i !== stateNode && i !== urls.length - 1) ?? runtimes.map((r) => r.node).find((i) => i !== stateNode)!;
    const writeVia = connect(urls[[0, 1, 2].find((i) => i !== victim && i !== stateNode) ?? stateNode]!);
    const pid = nodePid(victim);
    const t3 = Date.now();
    if (pid) process.kill(pid, 'SIGKILL');
    console.log(`  killed CouchDB node ${victim + 1} (pid ${pid}) with SIGKILL`);
    await sleep(1_000);
    const dupBefore3 = [...counts(changesFile).values()].filter((v) => v > 1).length;
    await write(100, writeVia);
    await allSeen(written);
    c = counts(changesFile);
    check(c.size === written, `node ${victim + 1} down: the changes trigger caught up, ${c.size} of ${written} changes fired (${[...c.values()].filter((v) => v > 1).length - dupBefore3} more ran twice)`);
    await sleep(2_000);
    ticks = tickReport(ticksFile, t3 + 1_000, Date.now() - 1_500);
    check(ticks.twice.length === 0, `node ${victim + 1} down: no tick twice (${ticks.twice.length})`);
    check(ticks.missing.length <= 2, `node ${victim + 1} down: ticks lost ${ticks.missing.length} (bound 2: a claim in flight through the dying node)`);
    cluster('start');
    console.log(`  node ${victim + 1} restarted (${((Date.now() - t3) / 1000).toFixed(1)} s after the kill)`);

    // 4. SIGKILL the state database's node
    const writeVia4 = connect(urls[[0, 1, 2].find((i) => i !== stateNode)!]!);
    const spid = nodePid(stateNode);
    const t4 = Date.now();
    if (spid) process.kill(spid, 'SIGKILL');
    console.log(`  killed the state database's node ${stateNode + 1} (pid ${spid}) with SIGKILL`);
    const dupBefore4 = [...counts(changesFile).values()].filter((v) => v > 1).length;
    await sleep(1_000);
    await write(100, writeVia4);
    await sleep(8_000);
    const down = tickReport(ticksFile, t4 + 1_000, Date.now());
    cluster('start');
    const back = Date.now();
    console.log(`  node ${stateNode + 1} restarted after ${((back - t4) / 1000).toFixed(1)} s; ${down.fired} ticks so far`);
    await allSeen(written);
    c = counts(changesFile);
    check(c.size === written, `state node down and back: the changes trigger caught up, ${c.size} of ${written} fired (${[...c.values()].filter((v) => v > 1).length - dupBefore4} more ran twice)`);
    await sleep(5_000);
    ticks = tickReport(ticksFile, t4, Date.now() - 1_500);
    check(ticks.twice.length === 0, `state node down and back: no tick twice (${ticks.twice.length})`);
    const late = ticks.missing.filter((t) => t > back + kLeaseMs);
    check(late.length <= 1, `state node down ${((back - t4) / 1000).toFixed(0)} s: ${ticks.missing.length} ticks not fired while it was away, ${late.length} after it was back + ${kLeaseMs} ms`);
    const all = counts(ticksFile);
    check([...all.values()].every((v) => v === 1), `whole run: ${all.size} ticks, none twice`);
    for (const r of runtimes) {
      const s = await status(r, urls[r.node]!);
      console.log(`  ${r.name}: schedules ${JSON.stringify(s?.schedules)} anomalies ${s?.anomalies.total}`);
    }
  } finally {
    for (const r of runtimes) await kill(r);
    try { cluster('start'); } catch { /* reported by the next step */ }
    const server = connect(urls[0]!);
    for (const db of await server.db.list().catch(() => [] as string[])) if (db.startsWith(prefix)) await server.db.destroy(db).catch(() => undefined);
  }
}

async function run(): Promise<void> {
  let urls: string[];
  // a script that is not there is a mistake in how this was called, not a cluster that cannot start
  if (!existsSync(clusterScript)) throw new Error(`cluster-check: no cluster script at ${clusterScript} (set COUCHDB_CLUSTER_SCRIPT)`);
  try {
    urls = cluster('start').split('\n').map((l) => l.trim()).filter((l) => /^https?:\/\//.test(l));
    if (urls.length < 3) throw new Error(`expected three node URLs, got ${urls.length}`);
  } catch (err) {
    console.log(`cluster-check: SKIPPED — the CouchDB cluster could not start: ${(err as Error).message.split('\n')[0]}`);
    return;
  }
  for (const n of scenarios) await scenario(urls, n);
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
  console.log(failures.length === 0 ? '\ncluster-check: PASSED' : `\ncluster-check: FAILED (${failures.length})\n  ${failures.join('\n  ')}`);
  process.exitCode = failures.length === 0 ? 0 : 1;
}

await run();
