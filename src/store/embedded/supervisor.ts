/**
 * Runs the embedded store as a child process and keeps it running: a crash of the store
 * never takes the runtime down. The first start lets the child pick a free loopback port;
 * every restart reuses it so URLs handed out before stay valid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LivelyError, describeError } from '../../shared/errors.ts';
import { silentLogger, type Logger } from '../../shared/logger.ts';
import { Env, kAdminName, kPasswordFile, parseReadyLine, storeCaEnv, type PasswordMessage } from './contract.ts';
import { withoutCredentials } from '../../shared/credentials.ts';
import { kDistDir } from '../../shared/dist.ts';

export interface EmbeddedStoreOptions {
  dataDir: string;
  /** keep databases in memory (tests); the data dir still holds config and the admin secret. */
  memory?: boolean;
  logger?: Logger;
  /** how long a start may take before the child is killed and retried. */
  startTimeout?: number;
  /** anonymous clients may sign up in `_users` (default false: only the admin creates users). */
  signup?: boolean;
}

/** The child's node arguments: the built server, or the source through tsx (resolved here, so
 * the child finds it whatever the runtime's working directory is). */
const kServerArgs = kDistDir
  ? [path.join(kDistDir, 'store-server.js')]
  : ['--import', import.meta.resolve('tsx'), fileURLToPath(new URL('./server.ts', import.meta.url))];
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
  private readonly opts: Required<Omit<EmbeddedStoreOptions, 'logger'>> & { logger: Logger };
  private password = '';
  private port = 0;
  private child: ChildProcess | undefined;
  private stopping = false;
  private backoff = kBackoffStart;
  private restartTimer: NodeJS.Timeout | undefined;
  private started = false;

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
    this.opts.logger.info('embedded store started', { port: this.port, pid: this.pid, memory: this.opts.memory });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    this.child = undefined;
    if (child) await terminate(child);
    this.started = false;
  }

  private launch(): Promise<void> {
    const { dataDir, memory, startTimeout, logger, signup } = this.opts;
    const child = spawn(process.execPath, kServerArgs, {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      // Its own process group: a Ctrl-C or a signal to the runtime's group must not kill the
      // store before the runtime has flushed into it. It still ends with the runtime (IPC).
      detached: true,
      env: {
        ...withoutCredentials(process.env),
        // read by the child when it first connects over TLS, not at its start (./extra-ca.ts)
        ...storeCaEnv(process.env, process.execArgv),
        [Env.dataDir]: dataDir,
        [Env.port]: String(this.port),
        [Env.memory]: memory ? '1' : '0',
        [Env.parentPid]: String(process.pid),
        [Env.signup]: signup ? '1' : '0',
      },
    });
    this.child = child;
    // by IPC, not the environment: /proc/<pid>/environ is readable by every process of the user
    const hello: PasswordMessage = { password: this.password };
    child.send(hello, (err) => { if (err) logger.warn('embedded store did not take its password', { error: describeError(err) }); });
    // the IPC channel exists only so the child notices our death; it must not keep us alive
    child.unref();
    child.channel?.unref();
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
            resolve();
          }
        }
      });
      (child.stdout as unknown as { unref?: () => void }).unref?.();
      (child.stderr as unknown as { unref?: () => void }).unref?.();
      child.on('error', (err) => logger.error('embedded store process error', { error: describeError(err) }));
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (!ready) reject(new LivelyError('LC_STORE_UNAVAILABLE', `embedded store exited before it was ready (code ${code}, signal ${signal})`));
        if (this.child !== child) return;
        this.child = undefined;
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
