/**
 * Runs the embedded store as a child process and keeps it running: a crash of the store
 * never takes the runtime down. The first start lets the child pick a free loopback port;
 * every restart reuses it so URLs handed out before stay valid.
 */
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { LivelyError, describeError } from '../../shared/errors.ts';
import { silentLogger, type Logger } from '../../shared/logger.ts';
import { kAdminName, kPasswordFile, parseReadyLine, type StartMessage } from './contract.ts';
import { spawnStoreChild, storeChildEnv, takeEarlyStore } from './spawn.ts';

export interface EmbeddedStoreOptions {
  dataDir: string;
  /** keep databases in memory (tests); the data dir still holds config and the admin secret. */
  memory?: boolean;
  logger?: Logger;
  /** how long a start may take before the child is killed and retried. */
  startTimeout?: number;
  /** anonymous clients may sign up in `_users` (default false: only the admin creates users). */
  signup?: boolean;
  /** on disk, sync every write before answering it, as Apache CouchDB does (default true; ./sync-writes.ts). */
  sync?: boolean;
  /**
   * The child's entry file: a build's dist/store-server.js, as the suite runs the store users
   * run. Default: the one of this code (the build's when it runs from dist/, else the source).
   */
  serverFile?: string;
}

const kBackoffStart = 200;
const kBackoffMax = 10_000;
/** a child that stayed up this long is considered healthy again: backoff starts over. */
const kStableAfter = 10_000;
const kKillGrace = 3_000;

/** Reads the admin password, creating it (mode 0600) on first use. */
export function adminPassword(dataDir: string): string {
  const file = path.join(dataDir, kPasswordFile);
  try {
    const pw = fs.readFileSync(file, 'utf8').trim();
    if (pw) return pw;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  fs.mkdirSync(dataDir, { recursive: true });
  const pw = randomBytes(24).toString('hex');
  fs.writeFileSync(file, pw + '\n', { mode: 0o600 });
  return pw;
}

export class EmbeddedStore extends EventEmitter {
  private readonly opts: Required<Omit<EmbeddedStoreOptions, 'logger' | 'serverFile'>> & Pick<EmbeddedStoreOptions, 'serverFile'> & { logger: Logger };
  private password = '';
  private port = 0;
  private child: ChildProcess | undefined;
  private stopping = false;
  private backoff = kBackoffStart;
  private restartTimer: NodeJS.Timeout | undefined;
  private started = false;
  /** whether the running child is the one the command spawned before the runtime loaded (./spawn.ts). */
  private spawnedEarly = false;
  private syncing = false;

  constructor(opts: EmbeddedStoreOptions) {
    super();
    if (!opts || typeof opts.dataDir !== 'string' || opts.dataDir === '') {
      throw new LivelyError('LC_CONFIG', 'options.dataDir must be a non-empty string');
    }
    this.opts = {
      dataDir: path.resolve(opts.dataDir),
      memory: opts.memory ?? false,
      logger: opts.logger ?? silentLogger,
      startTimeout: opts.startTimeout ?? 30_000,
      signup: opts.signup ?? false,
      sync: opts.sync ?? true,
      serverFile: opts.serverFile,
    };
  }

  /** `http://lively:<password>@127.0.0.1:<port>`; valid across restarts. */
  get url(): string {
    if (!this.port) throw new LivelyError('LC_STORE_UNAVAILABLE', 'the embedded store has not been started');
    return `http://${kAdminName}:${encodeURIComponent(this.password)}@127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** The running store syncs every write to disk before it answers it: what its child said when it was ready (false while none runs). */
  get syncsWrites(): boolean {
    return this.syncing;
  }

  async start(): Promise<void> {
    if (this.started) throw new LivelyError('LC_CONFIG', 'the embedded store is already started');
    this.started = true;
    this.stopping = false;
    this.password = adminPassword(this.opts.dataDir);
    try {
      await this.launch();
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.opts.logger.info('embedded store started', { port: this.port, pid: this.pid, memory: this.opts.memory, syncsWrites: this.syncing, spawnedEarly: this.spawnedEarly });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    this.child = undefined;
    this.syncing = false;
    if (child) await terminate(child);
    this.started = false;
  }

  private launch(): Promise<void> {
    const { dataDir, memory, startTimeout, logger, signup, sync } = this.opts;
    // the child the command spawned before the runtime loaded (./spawn.ts), on the first start
    const early = this.port === 0 && !this.opts.serverFile ? takeEarlyStore() : undefined;
    const child = early ?? spawnStoreChild(this.opts.serverFile ? [this.opts.serverFile] : undefined);
    this.child = child;
    this.spawnedEarly = early !== undefined;
    // by IPC, not the environment: /proc/<pid>/environ is readable by every process of the user
    const start: StartMessage = { password: this.password, dataDir, port: this.port, memory, signup, sync, env: storeChildEnv() };
    child.send(start, (err) => { if (err) logger.warn('embedded store did not take its start message', { error: describeError(err) }); });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => logger.warn('embedded store stderr', { text: text.trimEnd() }));

    return new Promise<void>((resolve, reject) => {
      let ready = false;
      let buffered = '';
      const startedAt = Date.now();
      const timer = setTimeout(() => {
        reject(new LivelyError('LC_STORE_UNAVAILABLE', `embedded store did not start within ${startTimeout} ms`));
        child.kill('SIGKILL');
      }, startTimeout);
      child.stdout!.setEncoding('utf8');
      child.stdout!.on('data', (text: string) => {
        if (ready) return;
        buffered += text;
        for (let i = buffered.indexOf('\n'); i >= 0 && !ready; i = buffered.indexOf('\n')) {
          const line = parseReadyLine(buffered.slice(0, i));
          buffered = buffered.slice(i + 1);
          if (line) {
            ready = true;
            clearTimeout(timer);
            this.port = line.port;
            this.syncing = line.sync;
            resolve();
          }
        }
      });
      child.on('error', (err) => logger.error('embedded store process error', { error: describeError(err) }));
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (!ready && early && this.child === child && !this.stopping) {
          // spawned before this start: whatever ended it, a child of this start's own is tried
          logger.warn('embedded store spawned early exited before it was ready; starting another', { code, signal });
          this.launch().then(resolve, reject);
          return;
        }
        if (!ready) reject(new LivelyError('LC_STORE_UNAVAILABLE', `embedded store exited before it was ready (code ${code}, signal ${signal})`));
        if (this.child !== child) return;
        this.child = undefined;
        this.syncing = false;
        if (this.stopping) return;
        if (Date.now() - startedAt > kStableAfter) this.backoff = kBackoffStart;
        logger.warn('embedded store exited; restarting', { code, signal, in: this.backoff });
        this.emit('exit', { code, signal });
        this.scheduleRestart();
      });
    });
  }

  private scheduleRestart(): void {
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, kBackoffMax);
    this.restartTimer = setTimeout(() => {
      if (this.stopping) return;
      this.launch().then(
        () => {
          this.opts.logger.info('embedded store restarted', { port: this.port, pid: this.pid });
          this.emit('restart', { port: this.port, pid: this.pid });
        },
        // the exit handler of the failed child schedules the next attempt
        (err) => this.opts.logger.error('embedded store restart failed', { error: describeError(err) }),
      );
    }, delay);
    this.restartTimer.unref();
  }
}

function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), kKillGrace);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
