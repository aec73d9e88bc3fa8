/**
 * `livelycouch <command>`: the only place that reads argv and exits the process.
 *   start            serve (embedded store unless COUCHDB_URL / --couch)
 *   init             create the databases, _security and validation documents
 *   deploy <dir>     push events/*.json and workers/<name>/ folders
 *   dev <dir>        start (or use the running runtime), deploy, then redeploy on every change
 *   trigger <path>   fire /_events/<path> on a running runtime (--method, --wait)
 *   status           the running runtime's /_lively/status
 *   logs [-f]        recent activation records (-f follows)
 */
import { readFile, writeFile, rm, mkdir } from 'node:fs/promises';
import { watch } from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { configFromEnv, makeConfig, type Config } from '../config/index.ts';
import { LivelyError, describeError } from '../shared/errors.ts';
import { createLogger } from '../shared/log.ts';
import { Runtime } from '../runtime.ts';
import { EmbeddedStore } from '../store/embedded/supervisor.ts';
import { connect } from '../store/couch.ts';
import { initStore } from '../store/init.ts';
import { deployDir } from '../runtime/deploy.ts';
import { parseArgs } from './args.ts';
import { expandBatch, type BatchDoc } from '../activations/log.ts';

const USAGE = `usage: livelycouch <start|init|deploy <dir>|dev <dir>|trigger <path>|status|logs [-f]> [options]
options: --port N --host H --data DIR --couch URL --prefix P --threads N --writer-role R
         --body-limit BYTES --log-level debug|info|warn|error --no-sample --memory
environment: COUCHDB_URL LIVELY_PORT LIVELY_HOST LIVELY_DATA LIVELY_DB_PREFIX LIVELY_THREADS ...`;

const stateFile = (c: Config) => path.join(c.dataDir, 'runtime.json');

interface RuntimeState { url: string; pid: number; storeUrl: string }

/** The state file of a runtime that is still running on this data directory. */
async function runningRuntime(c: Config): Promise<RuntimeState | undefined> {
  try {
    const state = JSON.parse(await readFile(stateFile(c), 'utf8')) as RuntimeState;
    process.kill(state.pid, 0);
    return state;
  } catch {
    return undefined;
  }
}

/** A CouchDB URL for admin commands: COUCHDB_URL, or the embedded store (started for the command if no runtime holds it). */
async function withStore<T>(c: Config, fn: (url: string) => Promise<T>): Promise<T> {
  if (c.couchUrl) return fn(c.couchUrl);
  const running = await runningRuntime(c);
  if (running) return fn(running.storeUrl);
  const store = new EmbeddedStore({ dataDir: c.dataDir, memory: c.embeddedMemory });
  await store.start();
  try { return await fn(store.url); } finally { await store.stop(); }
}

async function start(c: Config): Promise<Runtime> {
  const logger = createLogger(c.logLevel);
  const runtime = new Runtime({ config: c, logger });
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping', { signal });
    runtime.stop().then(() => rm(stateFile(c), { force: true })).then(() => process.exit(0), (err) => {
      logger.error('stop failed', { error: describeError(err) });
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  await runtime.start();
  await mkdir(c.dataDir, { recursive: true });
  await writeFile(stateFile(c), JSON.stringify({ url: runtime.url, pid: process.pid, storeUrl: runtime.couchUrl }), { mode: 0o600 });
  process.stdout.write(`LivelyCouch is listening on ${runtime.url}\n  try: curl ${runtime.url}/_events/email_event?wait=true\n`);
  return runtime;
}

/** `dev <dir>`: a runtime (or the one already running), the folder deployed, and redeployed on every change. */
async function dev(c: Config, dir: string): Promise<void> {
  const running = c.couchUrl ? undefined : await runningRuntime(c);
  const storeUrl = c.couchUrl ?? running?.storeUrl ?? (await start({ ...c, sample: false })).couchUrl;
  const nano = connect(storeUrl);
  await initStore(nano, { prefix: c.dbPrefix, writerRole: c.writerRole });
  const events = nano.use<Record<string, unknown>>(`${c.dbPrefix}events`);
  const workers = nano.use<Record<string, unknown>>(`${c.dbPrefix}workers`);
  let busy: Promise<void> = Promise.resolve();
  const push = () => {
    busy = busy.then(async () => {
      try {
        const report = await deployDir(dir, events, workers);
        if (report.written.length) process.stdout.write(`deployed ${report.written.join(', ')}\n`);
      } catch (err) {
        process.stderr.write(`livelycouch dev: ${describeError(err)}\n`);
      }
    });
  };
  push();
  await busy;
  process.stdout.write(`watching ${dir}\n`);
  let timer: NodeJS.Timeout | undefined;
  watch(dir, { recursive: true }, () => {
    clearTimeout(timer);
    timer = setTimeout(push, 150); // editors write a file in several steps
  });
}

async function runtimeUrl(c: Config): Promise<string> {
  const running = await runningRuntime(c);
  if (running) return running.url;
  return `http://${c.host}:${c.port}`;
}

async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  if (args.flags.help || args.flags.h || !args.command) { process.stdout.write(USAGE + '\n'); return; }
  const c = makeConfig({ ...configFromEnv(), ...args.config });
  switch (args.command) {
    case 'start':
      await start(c);
      return;
    case 'dev': {
      const dir = args.positional[0];
      if (!dir) throw new LivelyError('LC_CONFIG', 'dev needs a directory: livelycouch dev <dir>');
      return dev(c, path.resolve(dir));
    }
    case 'init':
      return withStore(c, async (url) => {
        await initStore(connect(url), { prefix: c.dbPrefix, writerRole: c.writerRole });
        process.stdout.write(`initialised ${c.dbPrefix}events, ${c.dbPrefix}workers, ${c.dbPrefix}logs\n`);
      });
    case 'deploy': {
      const dir = args.positional[0];
      if (!dir) throw new LivelyError('LC_CONFIG', 'deploy needs a directory: livelycouch deploy <dir>');
      return withStore(c, async (url) => {
        const nano = connect(url);
        await initStore(nano, { prefix: c.dbPrefix, writerRole: c.writerRole });
        const report = await deployDir(path.resolve(dir), nano.use(`${c.dbPrefix}events`), nano.use(`${c.dbPrefix}workers`));
        process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      });
    }
    case 'trigger': {
      const p = (args.positional[0] ?? '').replace(/^\/+/, '');
      if (!p) throw new LivelyError('LC_CONFIG', 'trigger needs a path: livelycouch trigger send_email');
      const method = typeof args.flags.method === 'string' ? args.flags.method.toUpperCase() : 'GET';
      const res = await request(`${await runtimeUrl(c)}/_events/${p}${args.flags.wait ? (p.includes('?') ? '&' : '?') + 'wait=true' : ''}`, { method: method as 'GET' });
      process.stdout.write(`${res.statusCode} ${await res.body.text()}\n`);
      if (res.statusCode >= 400) process.exitCode = 1;
      return;
    }
    case 'status': {
      const res = await request(`${await runtimeUrl(c)}/_lively/status`);
      process.stdout.write(JSON.stringify(await res.body.json(), null, 2) + '\n');
      return;
    }
    case 'logs':
      return withStore(c, async (url) => {
        const db = connect(url).use<Record<string, unknown>>(`${c.dbPrefix}logs`);
        const print = (doc: unknown) => {
          const d = doc as BatchDoc;
          if (d && d.type === 'activations') for (const rec of expandBatch(d)) process.stdout.write(JSON.stringify(rec) + '\n');
        };
        const page = await db.list({ descending: true, limit: 5, include_docs: true });
        for (const row of page.rows.reverse()) print(row.doc);
        if (!args.flags.f && !args.flags.follow) return;
        let since = 'now';
        for (;;) {
          const ch = await db.changes({ since, feed: 'longpoll', include_docs: true, timeout: 30_000 } as never);
          for (const r of ch.results as Array<{ doc?: unknown; deleted?: boolean }>) if (!r.deleted) print(r.doc);
          since = String(ch.last_seq);
        }
      });
    default:
      throw new LivelyError('LC_CONFIG', `unknown command "${args.command}"\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`livelycouch: ${err instanceof LivelyError ? err.message : describeError(err)}\n`);
  process.exit(1);
});
