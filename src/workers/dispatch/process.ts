/**
 * Process workers: python, sh, bash, ruby, perl, … and node with `isolation: "process"`.
 * One pool of kept processes per worker revision (up to `limits.processes`, by default
 * `limits.concurrency`), each fed one message at a time on its real stdin, or up to N at once
 * when it declares `{"pipeline": N}`. See ./process/child.ts for a single process's protocol.
 *
 * This dispatcher is the fallback for every type that is neither `isolate` nor a thread node
 * worker, so an unknown type reaches it and gets LC_UNKNOWN_TYPE as its outcome.
 */
import { credentialsApart } from '../../store/couch.ts';
import { LivelyError, describeError, isLivelyError } from '../../shared/errors.ts';
import { silentLogger, type Logger } from '../../shared/logger.ts';
import type { WorkerOutcome } from '../../shared/message.ts';
import { checkAttachments, removeRevisionFiles, writeRevisionFiles } from '../attachments.ts';
import type { DispatchContext, Dispatcher, DispatcherStats, WorkerFigures } from '../dispatcher.ts';
import { specKey, type WorkerSpec } from '../revision.ts';
import { Watchdog } from '../watchdog.ts';
import { ChildWorker, type RunEnd } from './process/child.ts';
import { findExecutable } from './process/host.ts';
import { handOver, type RunAs } from '../run-as.ts';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ProcessDispatcherOptions {
  /** type → command line (Config.interpreters); the delegate's file name is appended. */
  interpreters: Readonly<Record<string, readonly string[]>>;
  dataDir: string;
  /**
   * The URL handed to `"couch": true` workers as COUCHDB_URL. Default: `couchUrl` without its
   * credentials, so such a worker reaches only what anonymous users may (see README).
   */
  couchAccess?: (spec: WorkerSpec) => string | undefined | Promise<string | undefined>;
  couchUrl?: string;
  logger?: Logger;
  settleMs?: number;
  killGraceMs?: number;
  maxLine?: number;
  /** chars a result line may have (a response body of up to LIVELY_RESPONSE_LIMIT, as JSON). */
  maxResultLine?: number;
  maxLogLines?: number;
  stderrTail?: number;
  /** first delay after repeated crashes; doubles per crash up to backoffMaxMs. */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** guard against orphans with a watchdog process (default true). */
  watchdog?: boolean;
  /** the unprivileged user processes run as (a runtime running as root: ../run-as.ts). */
  runAs?: RunAs;
}

const kDefaultOptions = {
  settleMs: 150,
  killGraceMs: 2000,
  maxLine: 64 * 1024,
  maxLogLines: 1000,
  stderrTail: 10,
  backoffBaseMs: 100,
  backoffMaxMs: 30_000,
  watchdog: true,
};

/** The environment a worker process gets: nothing of the runtime's but PATH and LANG. */
export function workerEnv(spec: WorkerSpec, dir: string, couchUrl?: string): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH || '/usr/local/bin:/usr/bin:/bin',
    HOME: dir,
    LANG: process.env.LANG || 'C.UTF-8',
    LIVELY_WORKER: spec.id,
    LIVELY_WORKER_REV: spec.rev,
    ...spec.env,
  };
  if (spec.couch && couchUrl) env.COUCHDB_URL = couchUrl;
  else delete env.COUCHDB_URL;
  // Node workers find `livelycouch/worker` (and the runtime's packages, such as nano) as thread workers do.
  if (spec.type === 'node') env.NODE_PATH = [kNodeHelperPath, kRuntimeModules, spec.env.NODE_PATH].filter(Boolean).join(path.delimiter);
  // Python finds `livelycouch` (from livelycouch import result) on its module path; a shell
  // finds `livelycouch.sh` on PATH (`. livelycouch.sh`), as a dot command searches it.
  if (kPythonTypes.test(spec.type)) env.PYTHONPATH = [kPythonHelperPath, spec.env.PYTHONPATH].filter(Boolean).join(path.delimiter);
  if (kShellTypes.test(spec.type)) env.PATH = [env.PATH, kShellHelperPath].join(path.delimiter);
  return env;
}

const kPythonTypes = /^python/;
const kShellTypes = /^(sh|bash|dash|ksh|zsh)$/;
const kPythonHelperPath = fileURLToPath(new URL('../../../workers-runtime/child/python', import.meta.url));
const kShellHelperPath = fileURLToPath(new URL('../../../workers-runtime/child/sh', import.meta.url));

/**
 * The command line with the worker's `memory` limit applied: node gets a heap limit (V8 reserves
 * far more address space than it uses, so an address-space limit would stop it starting), every
 * other interpreter an address-space limit set by prlimit before it execs the interpreter, which
 * therefore keeps the pid the runtime knows.
 */
export function limitedCommand(spec: WorkerSpec, command: readonly string[]): string[] {
  const mb = spec.limits.memory;
  if (mb === undefined) return [...command];
  const [exe, ...args] = command;
  if (spec.type === 'node') return [exe!, `--max-old-space-size=${Math.max(1, Math.floor(mb))}`, ...args];
  const prlimit = findExecutable('prlimit');
  if (!prlimit) throw new LivelyError('LC_CONFIG', `worker "${spec.id}": "memory" needs prlimit (util-linux) on PATH to limit a ${spec.type} process`);
  const bytes = Math.floor(mb * 1024 * 1024);
  return [prlimit, `--as=${bytes}:${bytes}`, '--', exe!, ...args];
}

const kNodeHelperPath = fileURLToPath(new URL('../../../workers-runtime/child/node_path', import.meta.url));
const kRuntimeModules = fileURLToPath(new URL('../../../node_modules', import.meta.url));

function publicUrl(url: string | undefined): string | undefined {
  return url ? credentialsApart(url).base : undefined;
}

interface Waiter { resolve: (c: ChildWorker | undefined) => void }

/** Processes kept for a worker at most: `processes`, by default (and at most) `concurrency`. */
function processesOf(spec: WorkerSpec): number {
  const c = Math.max(1, spec.limits.concurrency);
  return Math.min(c, Math.max(1, spec.limits.processes ?? c));
}

/** The live process of `pool` with room for one more message and the fewest held, if any. */
function withRoom(pool: RevisionPool): ChildWorker | undefined {
  let best: ChildWorker | undefined;
  for (const c of pool.children) {
    if (c.alive && c.held < c.capacity && (!best || c.held < best.held)) best = c;
  }
  return best;
}

/** A process's resident memory, from /proc (0 where there is none: not Linux, or it just ended). */
function residentBytes(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * 4096;
  } catch {
    return 0;
  }
}

class RevisionPool {
  readonly children = new Set<ChildWorker>();
  readonly idle: ChildWorker[] = [];
  readonly waiters: Waiter[] = [];
  readonly idleTimers = new Map<ChildWorker, NodeJS.Timeout>();
  starting = 0;
  crashes = 0;
  lastCrash = 0;
  retiring = false;
  dir?: Promise<string>;
  constructor(public spec: WorkerSpec) {}
  get size(): number { return this.children.size + this.starting; }
}

export class ProcessDispatcher implements Dispatcher {
  readonly name = 'process';
  private readonly opts: Required<Omit<ProcessDispatcherOptions, 'couchAccess' | 'couchUrl' | 'maxResultLine' | 'runAs'>> & Pick<ProcessDispatcherOptions, 'couchAccess' | 'couchUrl' | 'maxResultLine' | 'runAs'>;
  private readonly pools = new Map<string, Map<string, RevisionPool>>();
  private readonly watchdog?: Watchdog;
  private readonly children = new Set<ChildWorker>();
  /** revision directories being removed (by specKey): a new pool of that revision waits for it. */
  private readonly removing = new Map<string, Promise<void>>();
  private inFlight = 0;
  private closed = false;

  constructor(options: ProcessDispatcherOptions) {
    if (!options || typeof options.dataDir !== 'string' || options.dataDir.length === 0) {
      throw new LivelyError('LC_CONFIG', 'options.dataDir must be a non-empty string');
    }
    if (!options.interpreters || typeof options.interpreters !== 'object') {
      throw new LivelyError('LC_CONFIG', 'options.interpreters must map worker types to command lines');
    }
    this.opts = { ...kDefaultOptions, logger: silentLogger, ...options, dataDir: path.resolve(options.dataDir) };
    if (this.opts.watchdog) this.watchdog = new Watchdog(this.opts.killGraceMs);
  }

  serves(spec: WorkerSpec): boolean {
    if (spec.type === 'isolate') return false;
    if (spec.type === 'node') return spec.isolation === 'process';
    return true;
  }

  /** Why this worker cannot run here (for the document's status), or undefined. */
  problem(spec: WorkerSpec): LivelyError | undefined {
    try { limitedCommand(spec, this.commandFor(spec)); checkAttachments(spec); } catch (e) { return e as LivelyError; }
    return undefined;
  }

  async dispatch(ctx: DispatchContext): Promise<WorkerOutcome> {
    if (this.closed) throw new LivelyError('LC_SHUTTING_DOWN', 'the process dispatcher is closed');
    const { spec, message } = ctx;
    const started = Date.now();
    const deadline = started + spec.limits.timeout;
    const outcome = (end: RunEnd | { kind: 'error'; error: LivelyError; logs?: RunEnd['logs'] }): WorkerOutcome => {
      const base = { worker: spec.id, logs: end.logs ?? [], durationMs: Date.now() - started };
      if (end.kind === 'ok') return { ...base, status: 'ok', ...(end.result === undefined ? {} : { result: end.result }) };
      const error: WorkerOutcome['error'] = { code: end.error.code, message: end.error.message };
      const d = end.error.details;
      if (d && 'exitCode' in d) { error.exitCode = d.exitCode as number | null; error.signal = (d.signal as string | null | undefined) ?? null; }
      return { ...base, status: end.kind === 'timeout' ? 'timeout' : 'error', error };
    };
    this.inFlight++;
    let pool: RevisionPool | undefined;
    let child: ChildWorker | undefined;
    try {
      // the type must have an interpreter; where it lives is looked up only to start a process
      this.interpreterFor(spec);
      pool = this.poolFor(spec);
      child = await this.acquire(pool, deadline, ctx.secrets);
      if (!child) return outcome({ kind: 'timeout', error: new LivelyError('LC_WORKER_TIMEOUT', `worker "${spec.id}": no process became free within ${spec.limits.timeout} ms`), logs: [] });
      const end = await child.run(message, ctx.onEmit, Math.max(1, deadline - Date.now()), ctx.onLate);
      if (end.kind === 'crash') { pool.crashes++; pool.lastCrash = Date.now(); }
      else if (end.kind === 'ok') pool.crashes = 0;
      return outcome(end);
    } catch (e) {
      const error = isLivelyError(e) ? e : new LivelyError('LC_WORKER_ERROR', `worker "${spec.id}": ${describeError(e)}`);
      return outcome({ kind: 'error', error });
    } finally {
      this.inFlight--;
      if (pool && child) this.release(pool, child);
    }
  }

  async retire(workerId: string, currentRev?: string): Promise<void> {
    const revs = this.pools.get(workerId);
    if (!revs) return;
    const waits: Promise<void>[] = [];
    for (const [rev, pool] of revs) if (rev !== currentRev) waits.push(this.retirePool(pool));
    await Promise.all(waits);
  }

  workerStats(): Map<string, WorkerFigures> {
    const out = new Map<string, WorkerFigures>();
    for (const [id, revs] of this.pools) {
      let warm = 0, memoryBytes = 0;
      for (const pool of revs.values()) for (const child of pool.children) { warm++; memoryBytes += residentBytes(child.pid); }
      out.set(id, { warm, memoryBytes });
    }
    return out;
  }

  stats(): DispatcherStats {
    let warm = 0, revisions = 0;
    for (const revs of this.pools.values()) for (const p of revs.values()) { warm += p.children.size; revisions++; }
    return { name: this.name, warm, inFlight: this.inFlight, revisions, watchdog: this.watchdog?.pid };
  }

  async close(deadlineMs = 10_000): Promise<void> {
    this.closed = true;
    const all = [...this.pools.values()].flatMap((revs) => [...revs.values()]);
    const retired = Promise.all(all.map((p) => this.retirePool(p)));
    let timer: NodeJS.Timeout | undefined;
    const overdue = new Promise<'overdue'>((resolve) => { timer = setTimeout(() => resolve('overdue'), deadlineMs); });
    if (await Promise.race([retired.then(() => 'done' as const), overdue]) === 'overdue') {
      const left = [...this.children];
      for (const c of left) c.forceKill();
      await Promise.all(left.map((c) => c.closed));
    }
    clearTimeout(timer);
    await this.watchdog?.close();
  }

  private interpreterFor(spec: WorkerSpec): readonly string[] {
    if (!this.serves(spec) || !Object.hasOwn(this.opts.interpreters, spec.type)) {
      throw new LivelyError('LC_UNKNOWN_TYPE', `worker "${spec.id}": no interpreter is configured for type "${spec.type}"`, { type: spec.type });
    }
    return this.opts.interpreters[spec.type]!;
  }

  private commandFor(spec: WorkerSpec): string[] {
    const [cmd, ...args] = this.interpreterFor(spec);
    const runAs = this.opts.runAs;
    const exe = cmd ? findExecutable(cmd, process.env.PATH, runAs) : undefined;
    if (!exe) {
      const whom = runAs ? ` that ${runAs.name} (LIVELY_WORKER_RUN_AS) may run` : '';
      throw new LivelyError('LC_INTERPRETER_MISSING', `worker "${spec.id}": interpreter "${cmd}" for type "${spec.type}" is not installed${whom}`, { type: spec.type });
    }
    return [exe, ...args];
  }

  private poolFor(spec: WorkerSpec): RevisionPool {
    let revs = this.pools.get(spec.id);
    if (!revs) this.pools.set(spec.id, revs = new Map());
    let pool = revs.get(spec.rev);
    if (!pool || pool.retiring) {
      pool = new RevisionPool(spec);
      revs.set(spec.rev, pool);
      // a message for a new revision supersedes the old ones: they finish and go
      for (const [rev, old] of revs) if (rev !== spec.rev) void this.retirePool(old);
    }
    return pool;
  }

  /**
   * An idle process of this revision, a new one (up to `processes`), a pipelining one with room,
   * or (all full) the next one released. The process returned is held for this message.
   */
  private async acquire(pool: RevisionPool, deadline: number, secrets?: Readonly<Record<string, string>>): Promise<ChildWorker | undefined> {
    for (;;) {
      const idle = pool.idle.pop();
      if (idle) {
        clearTimeout(pool.idleTimers.get(idle));
        pool.idleTimers.delete(idle);
        if (idle.alive) { idle.held++; return idle; }
        continue;
      }
      if (pool.size < processesOf(pool.spec)) return this.startChild(pool, deadline, secrets);
      const roomy = withRoom(pool);
      if (roomy) { roomy.held++; return roomy; }
      const waited = await new Promise<ChildWorker | undefined>((resolve) => {
        const w: Waiter = { resolve: (c) => { clearTimeout(t); resolve(c); } };
        const t = setTimeout(() => { const i = pool.waiters.indexOf(w); if (i !== -1) pool.waiters.splice(i, 1); resolve(undefined); }, Math.max(0, deadline - Date.now()));
        pool.waiters.push(w);
      });
      if (waited?.alive) return waited;
      if (waited) waited.held--;
      if (Date.now() >= deadline) return undefined;
    }
  }

  private async startChild(pool: RevisionPool, deadline: number, secrets?: Readonly<Record<string, string>>): Promise<ChildWorker> {
    const { spec } = pool;
    pool.starting++;
    try {
      // looked up before each start, so an interpreter installed later needs no restart
      const command = limitedCommand(spec, this.commandFor(spec));
      const delay = pool.crashes <= 1 ? 0
        : Math.min(this.opts.backoffBaseMs * 2 ** (pool.crashes - 2), this.opts.backoffMaxMs) - (Date.now() - pool.lastCrash);
      if (delay > 0) {
        if (Date.now() + delay >= deadline) {
          throw new LivelyError('LC_WORKER_ERROR', `worker "${spec.id}": crashed ${pool.crashes} times in a row; next start in ${delay} ms`, { crashes: pool.crashes });
        }
        await new Promise((r) => setTimeout(r, delay));
      }
      const runAs = this.opts.runAs;
      // a retired pool of this same revision may still be removing the directory: after it
      pool.dir ??= (this.removing.get(specKey(spec)) ?? Promise.resolve())
        .then(() => writeRevisionFiles(this.opts.dataDir, spec))
        .then(async (d) => { if (runAs) await handOver(d, runAs); return d; });
      const dir = await pool.dir.catch((e) => { pool.dir = undefined; throw e; });
      const couchUrl = spec.couch ? await (this.opts.couchAccess?.(spec) ?? publicUrl(this.opts.couchUrl)) : undefined;
      const [exe, ...args] = command;
      const child = await ChildWorker.start({
        command: exe!, args: [...args, spec.delegate], cwd: dir, env: { ...workerEnv(spec, dir, couchUrl), ...secrets },
        uid: runAs?.uid, gid: runAs?.gid,
        maxLine: this.opts.maxLine, maxCommandLine: Math.max(this.opts.maxLine, this.opts.maxResultLine ?? 0), maxLogLines: this.opts.maxLogLines, stderrTail: this.opts.stderrTail,
        settleMs: this.opts.settleMs, killGraceMs: this.opts.killGraceMs, logger: this.opts.logger,
        label: `worker "${spec.id}"`, acknowledges: spec.ack === true, memoryMb: spec.limits.memory,
      });
      this.watchdog?.guard(child.pid);
      // held for the message that started it before anyone else can see it
      child.held = 1;
      pool.children.add(child);
      this.children.add(child);
      this.opts.logger.debug('worker process started', { worker: spec.id, rev: spec.rev, pid: child.pid });
      void child.closed.then(() => this.forget(pool, child));
      return child;
    } finally {
      pool.starting--;
    }
  }

  private release(pool: RevisionPool, child: ChildWorker): void {
    child.held--;
    if (!child.alive) return;
    // as many waiting messages as it has room for (a pipelining process: several)
    while (child.held < child.capacity && pool.waiters.length > 0) {
      child.held++;
      pool.waiters.shift()!.resolve(child);
    }
    if (child.held > 0) return;
    if (pool.retiring || this.closed) { child.end(); return; }
    pool.idle.push(child);
    const t = setTimeout(() => {
      pool.idleTimers.delete(child);
      const i = pool.idle.indexOf(child);
      if (i !== -1) pool.idle.splice(i, 1);
      child.end();
    }, pool.spec.limits.idle);
    t.unref();
    pool.idleTimers.set(child, t);
  }

  private forget(pool: RevisionPool, child: ChildWorker): void {
    // What it left in its group is being ended (SIGKILL after the grace): the watchdog keeps
    // the group until then, in case the runtime dies first.
    const release = setTimeout(() => this.watchdog?.release(child.pid), this.opts.killGraceMs + 100);
    release.unref();
    pool.children.delete(child);
    this.children.delete(child);
    const i = pool.idle.indexOf(child);
    if (i !== -1) pool.idle.splice(i, 1);
    clearTimeout(pool.idleTimers.get(child));
    pool.idleTimers.delete(child);
    // a waiter must not wait for a process that will never be released: let it start one
    pool.waiters.shift()?.resolve(undefined);
    if (pool.retiring && pool.size === 0) this.drop(pool);
  }

  private retirePool(pool: RevisionPool): Promise<void> {
    pool.retiring = true;
    for (const c of pool.idle.splice(0)) { clearTimeout(pool.idleTimers.get(c)); c.end(); }
    pool.idleTimers.clear();
    if (pool.size === 0) this.drop(pool);
    return Promise.all([...pool.children].map((c) => c.closed)).then(() => undefined);
  }

  private drop(pool: RevisionPool): void {
    const revs = this.pools.get(pool.spec.id);
    if (revs?.get(pool.spec.rev) !== pool) return;
    revs.delete(pool.spec.rev);
    if (revs.size === 0) this.pools.delete(pool.spec.id);
    const key = specKey(pool.spec);
    const removed: Promise<void> = removeRevisionFiles(this.opts.dataDir, pool.spec)
      .catch(() => { /* best effort */ })
      .finally(() => { if (this.removing.get(key) === removed) this.removing.delete(key); });
    this.removing.set(key, removed);
    this.opts.logger.debug('worker revision retired', { worker: specKey(pool.spec) });
  }
}
