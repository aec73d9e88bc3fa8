/**
 * Configuration: one default object, options validated with errors that name the option,
 * and a frozen result. Sources: defaults < environment < CLI flags.
 */
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { LivelyError } from '../shared/errors.ts';

export interface Config {
  /** Apache CouchDB URL (with credentials); undefined starts the embedded store. */
  couchUrl?: string;
  host: string;
  port: number;
  dataDir: string;
  /** database name prefix: `<prefix>events`, `<prefix>workers`, `<prefix>logs`. */
  dbPrefix: string;
  /** embedded store keeps data in memory (tests). */
  embeddedMemory: boolean;
  /** role (besides admins) allowed to write events and workers. */
  writerRole?: string;
  bodyLimit: number;
  /** activations waiting for a worker slot, across all workers, before 503. */
  maxQueue: number;
  /** messages waiting per worker beyond its concurrency before 503. */
  maxWorkerQueue: number;
  threads: number;
  workerTimeout: number;
  workerIdle: number;
  workerConcurrency: number;
  maxChainDepth: number;
  /** ms a changes trigger's lease lasts without renewal (several runtimes on one CouchDB). */
  leaseMs: number;
  /** changes of one trigger fired at once: at most this many run twice after a crash. */
  changesConcurrency: number;
  /** type → command line for process workers; `node` defaults to this node binary. */
  interpreters: Record<string, string[]>;
  /** days activation records are kept. */
  logRetentionDays: number;
  /** activation records kept at most, across all days; past it the oldest go first. */
  logMaxRecords: number;
  /** write activation records at all (metrics are kept either way). */
  logRecords: boolean;
  /** deploy the sample app on start when the events database is empty. */
  sample: boolean;
  /** embedded store: anonymous clients may sign up in `_users` (off: only admins create users). */
  signup: boolean;
  /** the user process workers run as when the runtime runs as root (name, uid or uid:gid; '' keeps root). */
  workerUser: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
}

export const kDefaultInterpreters: Readonly<Record<string, string[]>> = Object.freeze({
  node: [process.execPath],
  python: ['python3', '-u'],
  python3: ['python3', '-u'],
  sh: ['sh'],
  bash: ['bash'],
  ruby: ['ruby'],
  perl: ['perl'],
  php: ['php'],
});

export const kDefaultConfig: Readonly<Config> = Object.freeze({
  couchUrl: undefined,
  host: '127.0.0.1',
  port: 5985,
  dataDir: '.livelycouch/data',
  dbPrefix: 'lively_',
  embeddedMemory: false,
  writerRole: undefined,
  bodyLimit: 1024 * 1024,
  maxQueue: 10_000,
  maxWorkerQueue: 1_000,
  threads: availableParallelism(),
  workerTimeout: 30_000,
  workerIdle: 60_000,
  workerConcurrency: 64,
  maxChainDepth: 16,
  leaseMs: 15_000,
  changesConcurrency: 100,
  interpreters: kDefaultInterpreters,
  logRetentionDays: 7,
  logMaxRecords: 1_000_000,
  logRecords: true,
  sample: true,
  signup: false,
  workerUser: 'nobody',
  logLevel: 'info',
});

export type ConfigInput = Partial<Config>;

function check(cond: boolean, msg: string): void {
  if (!cond) throw new LivelyError('LC_CONFIG', msg);
}
const isInt = (v: unknown, min: number) => typeof v === 'number' && Number.isInteger(v) && v >= min;

export function makeConfig(input: ConfigInput = {}): Readonly<Config> {
  const c: Config = { ...kDefaultConfig, ...stripUndefined(input) };
  c.interpreters = { ...kDefaultInterpreters, ...(input.interpreters ?? {}) };
  if (c.couchUrl !== undefined) {
    check(typeof c.couchUrl === 'string' && /^https?:\/\//.test(c.couchUrl), 'options.couchUrl must be an http(s) URL');
  }
  check(typeof c.host === 'string' && c.host.length > 0, 'options.host must be a non-empty string');
  check(isInt(c.port, 0) && c.port < 65536, 'options.port must be an integer from 0 to 65535');
  check(typeof c.dataDir === 'string' && c.dataDir.length > 0, 'options.dataDir must be a non-empty string');
  c.dataDir = path.resolve(c.dataDir);
  check(/^[a-z][a-z0-9_$()+/-]*$/.test(c.dbPrefix), 'options.dbPrefix must start with a-z and use only a-z, 0-9, _$()+/-');
  check(isInt(c.bodyLimit, 1), 'options.bodyLimit must be a positive integer');
  check(isInt(c.maxQueue, 1), 'options.maxQueue must be a positive integer');
  check(isInt(c.maxWorkerQueue, 0), 'options.maxWorkerQueue must be a non-negative integer');
  check(isInt(c.threads, 1), 'options.threads must be a positive integer');
  check(isInt(c.workerTimeout, 1), 'options.workerTimeout must be a positive integer (ms)');
  check(isInt(c.workerIdle, 1), 'options.workerIdle must be a positive integer (ms)');
  check(isInt(c.workerConcurrency, 1), 'options.workerConcurrency must be a positive integer');
  check(isInt(c.maxChainDepth, 1), 'options.maxChainDepth must be a positive integer');
  check(isInt(c.leaseMs, 30), 'options.leaseMs must be an integer of at least 30 (ms)');
  check(isInt(c.changesConcurrency, 1), 'options.changesConcurrency must be a positive integer');
  check(isInt(c.logRetentionDays, 0), 'options.logRetentionDays must be a non-negative integer');
  check(isInt(c.logMaxRecords, 1), 'options.logMaxRecords must be a positive integer');
  check(typeof c.logRecords === 'boolean', 'options.logRecords must be true or false');
  check(typeof c.signup === 'boolean', 'options.signup must be true or false');
  check(typeof c.workerUser === 'string', 'options.workerUser must be a user name, a uid, or "" (keep the runtime\'s user)');
  check(['debug', 'info', 'warn', 'error', 'silent'].includes(c.logLevel), 'options.logLevel must be debug, info, warn, error or silent');
  for (const [type, cmd] of Object.entries(c.interpreters)) {
    check(Array.isArray(cmd) && cmd.length > 0 && cmd.every((s) => typeof s === 'string' && s.length > 0),
      `options.interpreters.${type} must be a non-empty list of strings`);
  }
  return Object.freeze(c);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

const intOf = (name: string, v: string | undefined): number | undefined => {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new LivelyError('LC_CONFIG', `${name} must be an integer, got "${v}"`);
  return n;
};

/** LIVELY_* environment variables (and COUCHDB_URL). */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): ConfigInput {
  let interpreters: Record<string, string[]> | undefined;
  if (env.LIVELY_INTERPRETERS) {
    try { interpreters = JSON.parse(env.LIVELY_INTERPRETERS); } catch {
      throw new LivelyError('LC_CONFIG', 'LIVELY_INTERPRETERS must be JSON like {"python":["python3","-u"]}');
    }
  }
  return stripUndefined({
    couchUrl: env.COUCHDB_URL || undefined,
    host: env.LIVELY_HOST || undefined,
    port: intOf('LIVELY_PORT', env.LIVELY_PORT),
    dataDir: env.LIVELY_DATA || undefined,
    dbPrefix: env.LIVELY_DB_PREFIX || undefined,
    writerRole: env.LIVELY_WRITER_ROLE || undefined,
    bodyLimit: intOf('LIVELY_BODY_LIMIT', env.LIVELY_BODY_LIMIT),
    maxQueue: intOf('LIVELY_MAX_QUEUE', env.LIVELY_MAX_QUEUE),
    maxWorkerQueue: intOf('LIVELY_MAX_WORKER_QUEUE', env.LIVELY_MAX_WORKER_QUEUE),
    threads: intOf('LIVELY_THREADS', env.LIVELY_THREADS),
    workerTimeout: intOf('LIVELY_WORKER_TIMEOUT', env.LIVELY_WORKER_TIMEOUT),
    workerIdle: intOf('LIVELY_WORKER_IDLE', env.LIVELY_WORKER_IDLE),
    workerConcurrency: intOf('LIVELY_WORKER_CONCURRENCY', env.LIVELY_WORKER_CONCURRENCY),
    maxChainDepth: intOf('LIVELY_MAX_CHAIN_DEPTH', env.LIVELY_MAX_CHAIN_DEPTH),
    logMaxRecords: intOf('LIVELY_LOG_MAX_RECORDS', env.LIVELY_LOG_MAX_RECORDS),
    logRecords: env.LIVELY_LOG_RECORDS === undefined || env.LIVELY_LOG_RECORDS === '' ? undefined : env.LIVELY_LOG_RECORDS !== '0' && env.LIVELY_LOG_RECORDS !== 'false',
    leaseMs: intOf('LIVELY_LEASE_MS', env.LIVELY_LEASE_MS),
    changesConcurrency: intOf('LIVELY_CHANGES_CONCURRENCY', env.LIVELY_CHANGES_CONCURRENCY),
    interpreters,
    sample: env.LIVELY_SAMPLE === undefined ? undefined : env.LIVELY_SAMPLE !== '0' && env.LIVELY_SAMPLE !== 'false',
    signup: env.LIVELY_SIGNUP === undefined || env.LIVELY_SIGNUP === '' ? undefined : env.LIVELY_SIGNUP !== '0' && env.LIVELY_SIGNUP !== 'false',
    workerUser: env.LIVELY_WORKER_RUN_AS,
    logLevel: (env.LIVELY_LOG_LEVEL as Config['logLevel']) || undefined,
  });
}

/** Redacts credentials for logging. */
export function describeConfig(c: Readonly<Config>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...c };
  if (c.couchUrl) {
    const u = new URL(c.couchUrl);
    if (u.password) u.password = '***';
    out.couchUrl = u.toString();
  }
  delete out.interpreters;
  return out;
}
