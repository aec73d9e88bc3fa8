/**
 * `livelycouch <command>`: the only place that reads argv and exits the process.
 *   start            serve (embedded store unless COUCHDB_URL / --couch)
 *   init             create the databases, _security and validation documents
 *   deploy <dir>     push events/*.json and workers/<name>/ folders, reporting what changed
 *   dev <dir>        start (or use the running runtime), deploy, then push every change
 *   trigger <path>   fire /_events/<path> on a running runtime (--body, --method, --wait)
 *   status           the running runtime's /_lively/status
 *   logs [-f]        activation records through /_lively/activations (-f follows)
 *   new <dir>        a new app folder from the template
 *   secret …         set NAME (stdin or prompt), list (names), rm NAME through /_lively/secrets
 * Every command takes --help; --version prints the version. A failure exits non-zero with one line on stderr,
 * `livelycouch <command>: <reason>`, with every known password masked.
 */
import { readFile, stat } from 'node:fs/promises';
import { configFromEnv, makeConfig, type Config } from '../config/index.ts';
import { LivelyError, describeError } from '../shared/errors.ts';
import type { Runtime } from '../runtime.ts';
import { UsageError, commandOf, parseArgs, type ParsedArgs } from './args.ts';
import { commandHelp, findCommand, kCommands, mainHelp } from './commands.ts';
import {
  call, explicitTarget, getJson, redactSecrets, replyError, resolveTarget, runningRuntime, stateFile, storeUrlThrough,
  type TargetFlags,
} from './client.ts';
// Everything else is imported by the command that needs it: `--help`, `--version` and `trigger`
// load only the modules above, not the runtime, the store or the bundler.

async function packageVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

const out = (s: string) => { process.stdout.write(s); };
const str = (v: string | true | undefined) => (typeof v === 'string' ? v : undefined);
const targetFlags = (a: ParsedArgs): TargetFlags => ({ url: str(a.flags.url), user: str(a.flags.user) });

/** A CouchDB URL for admin commands: --url (through that runtime), COUCHDB_URL, the running runtime's store, or the embedded store started for the command. */
async function withStore<T>(c: Config, a: ParsedArgs, fn: (url: string) => Promise<T>): Promise<T> {
  const explicit = explicitTarget(targetFlags(a));
  if (explicit) return fn(storeUrlThrough(explicit));
  if (c.couchUrl) return fn(c.couchUrl);
  const running = await runningRuntime(c);
  if (running) return fn(running.storeUrl);
  const { EmbeddedStore } = await import('../store/embedded/supervisor.ts');
  const store = new EmbeddedStore({ dataDir: c.dataDir, memory: c.embeddedMemory });
  await store.start();
  try { return await fn(store.url); } finally { await store.stop(); }
}

async function start(c: Config): Promise<Runtime> {
  const [{ writeFile, rm, mkdir }, { removeCredentials }, { checkPort, lockDataDir }, { createLogger }, { unsupportedNodeNotice }, { dropEarlyStore }] = await Promise.all([
    import('node:fs/promises'), import('../shared/credentials.ts'), import('./lock.ts'), import('../shared/logger.ts'),
    import('../shared/node-lines.ts'), import('../store/embedded/spawn.ts'),
  ]);
  // spawned by bin/livelycouch.js for an embedded store; a CouchDB set some other way needs none
  if (c.couchUrl) dropEarlyStore();
  // read into the configuration already: nothing the runtime starts may inherit them
  removeCredentials();
  const release = await lockDataDir(c.dataDir);
  try {
    await checkPort(c.host, c.port);
  } catch (err) {
    await release();
    throw err;
  }
  const logger = createLogger(c.logLevel);
  const unsupported = unsupportedNodeNotice(process.versions.node);
  if (unsupported) process.stderr.write(`livelycouch start: ${unsupported}\n`);
  // The embedded store's child starts while this process loads the runtime: the two take about
  // as long, and neither needs the other until the runtime connects.
  const store = c.couchUrl ? undefined : import('../store/embedded/supervisor.ts').then(async ({ EmbeddedStore }) => {
    const s = new EmbeddedStore({ dataDir: c.dataDir, memory: c.embeddedMemory, logger, signup: c.signup, sync: c.storeSync });
    await s.start();
    return s;
  });
  // handled where the runtime awaits it; until then a failure must not end the process unreported
  store?.catch(() => undefined);
  let runtime: Runtime;
  try {
    const { Runtime } = await import('../runtime.ts');
    runtime = new Runtime({ config: c, logger, ...(store ? { store } : {}) });
  } catch (err) {
    await store?.then((s) => s.stop(), () => undefined);
    await release();
    throw err;
  }
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping', { signal });
    runtime.stop().then(() => rm(stateFile(c), { force: true })).then(release).then(() => process.exit(0), (err) => {
      logger.error('stop failed', { error: describeError(err) });
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  try {
    await runtime.start();
  } catch (err) {
    // a store that started but the runtime never took over is stopped here
    await store?.then((s) => s.stop(), () => undefined);
    await release();
    throw err;
  }
  await mkdir(c.dataDir, { recursive: true });
  await writeFile(stateFile(c), JSON.stringify({ url: runtime.url, pid: process.pid, storeUrl: runtime.couchUrl }), { mode: 0o600 });
  out(`LivelyCouch is listening on ${runtime.url}\n`);
  if (c.sample) out(`  try: curl ${runtime.url}/_events/email_event?wait=true\n`);
  return runtime;
}

async function requireDir(dir: string): Promise<void> {
  const s = await stat(dir).catch(() => undefined);
  if (!s?.isDirectory()) throw new LivelyError('LC_BAD_REQUEST', `${dir}: no such folder`);
}

/** `dev <dir>`: a runtime (or the one already running, or --url's), the folder deployed, and every change pushed. */
async function dev(c: Config, a: ParsedArgs, dir: string): Promise<void> {
  await requireDir(dir);
  const explicit = explicitTarget(targetFlags(a));
  const running = explicit ? undefined : await runningRuntime(c);
  // the store's child bin/livelycouch.js spawned is for a runtime of our own, which this one is not
  if (explicit || running) (await import('../store/embedded/spawn.ts')).dropEarlyStore();
  const storeUrl = explicit ? storeUrlThrough(explicit) : running?.storeUrl ?? (await start({ ...c, sample: false })).couchUrl;
  const [{ connect }, { initStore }, { devWatch }, { deployLines }] = await Promise.all([
    import('../store/couch.ts'), import('../store/init.ts'), import('./dev.ts'), import('./format.ts'),
  ]);
  const nano = connect(storeUrl);
  await initStore(nano, { prefix: c.dbPrefix, writerRole: c.writerRole });
  const json = a.flags.json === true;
  const watcher = devWatch({
    dir,
    events: nano.use(`${c.dbPrefix}events`),
    workers: nano.use(`${c.dbPrefix}workers`),
    json,
    format: (r) => deployLines(r, { quietUnchanged: true }),
    out: (line) => out(`${line}\n`),
    err: (reason) => process.stderr.write(`livelycouch dev: ${oneLine(reason)}\n`),
  });
  await watcher.deployed;
  out(`watching ${dir}\n`);
  if (explicit || running) {
    // No runtime of ours to stop: Ctrl-C just ends the watch.
    const stop = () => { watcher.close(); process.exit(0); };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  }
}

function eventPath(raw: string): string {
  const p = raw.replace(/^\/+/, '').replace(/^_events(\/|$)/, '');
  if (!p) throw new UsageError('trigger needs an event path, e.g. livelycouch trigger send_email');
  return p;
}

async function trigger(c: Config, a: ParsedArgs): Promise<number> {
  const p = eventPath(a.positional[0]!);
  const data = str(a.flags.body);
  if (data !== undefined) {
    try { JSON.parse(data); } catch (err) {
      throw new UsageError(`--body is not valid JSON (${describeError(err)})`);
    }
  }
  const method = (str(a.flags.method) ?? (data !== undefined ? 'POST' : 'GET')).toUpperCase();
  if (!/^[A-Z]+$/.test(method)) throw new UsageError(`--method must be an HTTP method, got "${str(a.flags.method)}"`);
  const wait = a.flags.wait === true;
  const target = await resolveTarget(c, targetFlags(a), { admin: false });
  const query = wait ? `${p.includes('?') ? '&' : '?'}wait=true` : '';
  const reply = await call(target, method, `/_events/${p}${query}`, data === undefined ? {} : { body: data, headers: { 'content-type': 'application/json' } });
  if (reply.status >= 400) throw new LivelyError('LC_BAD_REQUEST', replyError(reply));
  const body = reply.body as { activation?: string; events?: string[]; workers?: string[]; outcomes?: Array<Record<string, any>> };
  // An endpoint (an event with "response") answers with its worker's own response: shown as it is.
  if (body === null || typeof body !== 'object' || typeof body.activation !== 'string') {
    out(reply.text === '' || reply.text.endsWith('\n') ? reply.text : `${reply.text}\n`);
    return 0;
  }
  if (a.flags.json === true) out(`${JSON.stringify(body)}\n`);
  else {
    out(`${reply.status} activation ${String(body.activation)} (events: ${(body.events ?? []).join(', ') || '-'}; workers: ${(body.workers ?? []).join(', ') || '-'})\n`);
    for (const o of body.outcomes ?? []) {
      out(`${String(o.worker)}  ${String(o.status)}  ${Math.round(Number(o.durationMs ?? 0))}ms\n`);
      for (const l of (o.logs ?? []) as Array<{ level?: string; msg?: string }>) out(`  ${l.level ?? 'info'}: ${l.msg ?? ''}\n`);
      if (o.result !== undefined) out(`  result: ${JSON.stringify(o.result)}\n`);
      if (o.error) {
        out(`  error: ${String(o.error.code ?? '')} ${String(o.error.message ?? '')}\n`);
        // The frames of the stack (its first line repeats the message), in the worker's own files.
        if (typeof o.error.stack === 'string') for (const frame of o.error.stack.split('\n').slice(1)) out(`    ${frame.trim()}\n`);
      }
    }
  }
  const failed = (body.outcomes ?? []).filter((o) => o.status !== 'ok');
  if (failed.length) {
    const f = failed[0]!;
    process.stderr.write(`livelycouch trigger: worker ${String(f.worker)} ended ${String(f.status)}${f.error ? `: ${String(f.error.code ?? '')} ${oneLine(String(f.error.message ?? ''))}` : ''}${failed.length > 1 ? ` (and ${failed.length - 1} more)` : ''}\n`);
    return 1;
  }
  return 0;
}

async function run(argv: string[]): Promise<number | 'running'> {
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v' || argv[0] === 'version')) {
    out(`livelycouch ${await packageVersion()}\n`);
    return 0;
  }
  const name = commandOf(argv);
  if (name === '' || name === 'help') {
    const topic = name === 'help' ? argv[argv.indexOf('help') + 1] : undefined;
    const cmd = topic ? findCommand(topic) : undefined;
    if (topic && !cmd) throw new UsageError(`unknown command "${topic}"`);
    if (!cmd && argv.some((x) => !['--help', '-h', 'help'].includes(x))) throw new UsageError(`unknown option ${argv.find((x) => x.startsWith('-'))}`);
    out(cmd ? commandHelp(cmd) : mainHelp());
    return 0;
  }
  const cmd = findCommand(name);
  if (!cmd) throw new UsageError(`unknown command "${name}" (commands: ${kCommands.map((k) => k.name).join(', ')})`);
  const a = parseArgs(argv, name, cmd.flags);
  if (a.flags.help) { out(commandHelp(cmd)); return 0; }
  const [need, allowed] = cmd.positional;
  if (a.positional.length < need) throw new UsageError(`missing ${cmd.args}`);
  if (a.positional.length > allowed) throw new UsageError(`unexpected argument "${a.positional[allowed]}"`);
  const c = makeConfig({ ...configFromEnv(), ...a.config });
  const couchModules = () => Promise.all([import('../store/couch.ts'), import('../store/init.ts')]);
  switch (name) {
    case 'start':
      await start(c);
      return 'running';
    case 'dev':
      await dev(c, a, a.positional[0]!);
      return 'running';
    case 'init': {
      const [{ connect }, { initStore }] = await couchModules();
      return withStore(c, a, async (url) => {
        await initStore(connect(url), { prefix: c.dbPrefix, writerRole: c.writerRole });
        out(`initialised ${c.dbPrefix}events, ${c.dbPrefix}workers, ${c.dbPrefix}logs, ${c.dbPrefix}secrets\n`);
        return 0;
      });
    }
    case 'deploy': {
      const [{ connect }, { initStore }] = await couchModules();
      const from = str(a.flags.from);
      if (from !== undefined) {
        if (a.positional.length) throw new UsageError('give an app folder or --from, not both');
        if (!/^https?:\/\//.test(from)) throw new UsageError('--from must be an http(s) CouchDB URL');
        const { pullApp } = await import('../core/pull.ts');
        return withStore(c, a, async (url) => {
          const nano = connect(url);
          await initStore(nano, { prefix: c.dbPrefix, writerRole: c.writerRole });
          const report = await pullApp(nano, url, from, { prefix: c.dbPrefix, fromPrefix: str(a.flags['from-prefix']) ?? 'lively_' });
          out(a.flags.json === true ? `${JSON.stringify(report)}\n` : report.map((r) => `replicated ${r.from} → ${r.db}: ${r.docsWritten} written\n`).join(''));
          return 0;
        });
      }
      const dir = a.positional[0];
      if (dir === undefined) throw new UsageError('missing <dir> (or --from URL)');
      await requireDir(dir);
      const [{ deployDir }, { deployLines }] = await Promise.all([import('../core/deploy.ts'), import('./format.ts')]);
      return withStore(c, a, async (url) => {
        const nano = connect(url);
        await initStore(nano, { prefix: c.dbPrefix, writerRole: c.writerRole });
        const report = await deployDir(dir, nano.use(`${c.dbPrefix}events`), nano.use(`${c.dbPrefix}workers`));
        if (a.flags.json === true) out(`${JSON.stringify(report)}\n`);
        else {
          // warnings on stderr: the deploy itself succeeded
          for (const l of deployLines(report)) {
            if (l.startsWith('warning: ')) process.stderr.write(`livelycouch deploy: ${l}\n`);
            else out(`${l}\n`);
          }
        }
        return 0;
      });
    }
    case 'trigger':
      return trigger(c, a);
    case 'new': {
      const dir = a.positional[0]!;
      const { newApp } = await import('./new-app.ts');
      const files = await newApp(dir);
      out(`created ${dir}: ${files.length} files (events/, workers/, schemas/, types/); next: livelycouch deploy ${dir}\n`);
      return 0;
    }
    case 'secret': {
      const { secretCommand } = await import('./secret.ts');
      await secretCommand(await resolveTarget(c, targetFlags(a), { admin: true }), a.positional, out, a.flags.json === true);
      return 0;
    }
    case 'status': {
      const { statusLines } = await import('./format.ts');
      const body = await getJson(await resolveTarget(c, targetFlags(a), { admin: true }), '/_lively/status');
      out(a.flags.json === true ? `${JSON.stringify(body, null, 2)}\n` : statusLines(body as Record<string, unknown>).map((l) => `${l}\n`).join(''));
      return 0;
    }
    case 'logs': {
      const { followLogs, logsQuery, printer, showLogs } = await import('./logs.ts');
      const q = logsQuery(a.flags);
      const target = await resolveTarget(c, targetFlags(a), { admin: true });
      const print = printer(a.flags.json === true, out);
      if (a.flags.follow !== true) { await showLogs(target, q, print); return 0; }
      const ac = new AbortController();
      for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => ac.abort());
      await followLogs(target, q, print, ac.signal, (reason) => process.stderr.write(reason
        ? `livelycouch logs: ${oneLine(reason)}; still following\n`
        : 'livelycouch logs: the runtime answers again\n'));
      return 0;
    }
    default:
      throw new UsageError(`unknown command "${name}"`);
  }
}

function oneLine(s: string): string {
  return redactSecrets(s).replace(/\s*\n\s*/g, ' ').trim();
}

const argv = process.argv.slice(2);
run(argv).then((code) => {
  if (code !== 'running') process.exitCode = code;
}, (err: unknown) => {
  const name = findCommand(commandOf(argv)) ? commandOf(argv) : '';
  const usage = err instanceof UsageError;
  const hint = usage ? ` (see livelycouch${name ? ` ${name}` : ''} --help)` : '';
  process.stderr.write(`livelycouch${name ? ` ${name}` : ''}: ${oneLine(describeError(err))}${hint}\n`);
  process.exit(usage ? 2 : 1);
});
