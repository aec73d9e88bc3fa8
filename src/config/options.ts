/**
 * Every configuration option, declared once: its key, environment variable, command-line flag,
 * default, check and one line of documentation. The `Config` type, the defaults, the reading of
 * the environment, the `start`/`dev` flags and the table in docs/operations.md are all derived
 * from this table (a spec checks the docs against it).
 */
import { availableParallelism } from 'node:os';
import { kDatabaseNamePattern } from '../shared/db-name.ts';

interface Common {
  /** environment variable. */
  env?: string;
  /** command-line flag of `start` and `dev`, without its dashes. */
  flag?: string;
  /** what the option means, one line (docs and --help). */
  doc: string;
  /** the default as the docs show it, where the value itself says less. */
  shown?: string;
}
export interface IntOption extends Common { kind: 'int'; default: number; min: number; max?: number; unit?: string }
export interface StringOption extends Common { kind: 'string'; default: string; pattern?: RegExp; rule?: string; /** '' is a value (not unset) */ emptyOk?: boolean }
export interface OptionalStringOption extends Common { kind: 'optional-string'; pattern?: RegExp; rule?: string }
export interface BoolOption extends Common {
  kind: 'bool'; default: boolean;
  /** the flag sets the option to false, and this says what it does. */
  negated?: string;
}
export interface EnumOption<V extends string> extends Common { kind: 'enum'; default: V; values: readonly V[] }
export interface InterpretersOption extends Common { kind: 'interpreters'; default: Readonly<Record<string, string[]>> }
export type OptionDef = IntOption | StringOption | OptionalStringOption | BoolOption | EnumOption<string> | InterpretersOption;

const int = (o: Omit<IntOption, 'kind'>): IntOption => ({ kind: 'int', ...o });
const str = (o: Omit<StringOption, 'kind'>): StringOption => ({ kind: 'string', ...o });
const optStr = (o: Omit<OptionalStringOption, 'kind'>): OptionalStringOption => ({ kind: 'optional-string', ...o });
const bool = (o: Omit<BoolOption, 'kind'>): BoolOption => ({ kind: 'bool', ...o });
const oneOf = <V extends string>(o: Omit<EnumOption<V>, 'kind'>): EnumOption<V> => ({ kind: 'enum', ...o });

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

/** the database-name rule, for the options table's checks and their readers */
export { kDatabaseNamePattern };

export const kOptions = {
  couchUrl: optStr({ env: 'COUCHDB_URL', flag: 'couch', pattern: /^https?:\/\//, rule: 'an http(s) URL', doc: 'Apache CouchDB 3.x URL with admin credentials; unset starts the embedded store' }),
  port: int({ env: 'LIVELY_PORT', flag: 'port', default: 5985, min: 0, max: 65535, doc: 'HTTP port (`0`: any free port)' }),
  host: str({ env: 'LIVELY_HOST', flag: 'host', default: '127.0.0.1', doc: 'address to listen on' }),
  dataDir: str({ env: 'LIVELY_DATA', flag: 'data-dir', default: '.livelycouch/data', doc: 'embedded store, bundle cache, process-worker directories' }),
  dbPrefix: str({ env: 'LIVELY_DB_PREFIX', flag: 'prefix', default: 'lively_', pattern: kDatabaseNamePattern, rule: 'a name that starts with a-z and uses only a-z, 0-9, _$()+/-', doc: 'databases `<prefix>events`, `<prefix>workers`, `<prefix>logs` (runtime state), `<prefix>secrets`, `<prefix>logs-YYYYMMDD` (activation records), `<prefix>durable_YYYYMMDD` (the durable journal)' }),
  embeddedMemory: bool({ flag: 'memory', default: false, doc: 'the embedded store keeps its data in memory only' }),
  writerRole: optStr({ env: 'LIVELY_WRITER_ROLE', flag: 'writer-role', doc: 'role that may write events and workers besides admins' }),
  bodyLimit: int({ env: 'LIVELY_BODY_LIMIT', flag: 'body-limit', default: 1024 * 1024, min: 1, unit: 'bytes', doc: 'largest trigger body; larger is 413' }),
  responseLimit: int({ env: 'LIVELY_RESPONSE_LIMIT', flag: 'response-limit', default: 6 * 1024 * 1024, min: 1, unit: 'bytes', doc: 'largest response body of a worker answering an HTTP request; larger is 500' }),
  maxQueue: int({ env: 'LIVELY_MAX_QUEUE', default: 10_000, min: 1, doc: 'messages waiting for a worker slot, in all, before 503' }),
  maxWorkerQueue: int({ env: 'LIVELY_MAX_WORKER_QUEUE', default: 1_000, min: 0, doc: 'messages waiting for a slot of one worker before 503 (a worker\'s `queue` overrides it)' }),
  workerConcurrency: int({ env: 'LIVELY_WORKER_CONCURRENCY', default: 64, min: 1, doc: 'messages of one worker run at once (a worker\'s `concurrency` overrides it)' }),
  threads: int({ env: 'LIVELY_THREADS', flag: 'threads', default: availableParallelism(), shown: 'cores', min: 1, doc: 'threads in the node worker pool' }),
  workerTimeout: int({ env: 'LIVELY_WORKER_TIMEOUT', default: 30_000, min: 1, unit: 'ms', doc: 'default per-message timeout' }),
  workerIdle: int({ env: 'LIVELY_WORKER_IDLE', default: 60_000, min: 1, unit: 'ms', doc: 'default time an unused worker stays warm' }),
  maxChainDepth: int({ env: 'LIVELY_MAX_CHAIN_DEPTH', default: 16, min: 1, doc: 'events emitted in a chain before it is stopped (`LC_CHAIN_TOO_DEEP`)' }),
  leaseMs: int({ env: 'LIVELY_LEASE_MS', default: 15_000, min: 30, unit: 'ms', doc: 'lease period of a changes trigger among several runtimes' }),
  stateCompactMs: int({ env: 'LIVELY_STATE_COMPACT_MS', default: 60_000, min: 1_000, unit: 'ms', doc: 'how often the runtime checks whether `<prefix>logs` is due for compaction ([cluster.md](cluster.md))' }),
  changesConcurrency: int({ env: 'LIVELY_CHANGES_CONCURRENCY', default: 100, min: 1, doc: 'changes of one changes trigger fired at once (one checkpointed batch)' }),
  changesPage: int({ env: 'LIVELY_CHANGES_PAGE', default: 400, min: 1, doc: 'changes of one changes trigger read from the store per request, fired batch by batch (never fewer than changesConcurrency)' }),
  interpreters: { kind: 'interpreters', env: 'LIVELY_INTERPRETERS', default: kDefaultInterpreters, shown: 'see below the table', doc: 'JSON: type → command, e.g. `{"lua":["lua5.4"]}`' } as InterpretersOption,
  logRetentionDays: int({ env: 'LIVELY_LOG_RETENTION_DAYS', default: 7, min: 0, unit: 'days', doc: 'how long activation records are kept' }),
  logMaxRecords: int({ env: 'LIVELY_LOG_MAX_RECORDS', default: 1_000_000, min: 1, doc: 'activation records kept at most, over all days; past it the oldest go first' }),
  logRecords: bool({ env: 'LIVELY_LOG_RECORDS', flag: 'no-records', negated: 'keep no activation records', default: true, doc: 'keep activation records (`0`/`false`: none; metrics still count)' }),
  storeSync: bool({ env: 'LIVELY_STORE_SYNC', default: true, doc: 'embedded store on disk: each write reaches the disk before it is answered, as on Apache CouchDB (`0`/`false`: writes wait in the operating system\'s cache, faster, and a power loss can take the last ones)' }),
  signup: bool({ env: 'LIVELY_SIGNUP', default: false, doc: 'embedded store: anonymous clients may sign up in `_users` (off: only admins create users)' }),
  workerUser: str({ env: 'LIVELY_WORKER_RUN_AS', default: 'nobody', emptyOk: true, doc: 'the user process workers run as when the runtime runs as root (a name, uid or uid:gid; `""` keeps root)' }),
  sample: bool({ env: 'LIVELY_SAMPLE', flag: 'no-sample', negated: 'do not deploy examples/hello into an empty store', default: true, doc: 'deploy `examples/hello` into an empty store' }),
  logLevel: oneOf({ env: 'LIVELY_LOG_LEVEL', flag: 'log-level', default: 'info', values: ['debug', 'info', 'warn', 'error', 'silent'] as const, doc: 'the runtime\'s log level' }),
};

type ValueOf<O> =
  O extends IntOption ? number
    : O extends StringOption ? string
      : O extends OptionalStringOption ? string | undefined
        : O extends BoolOption ? boolean
          : O extends EnumOption<infer V> ? V
            : O extends InterpretersOption ? Record<string, string[]>
              : never;

export type OptionKey = keyof typeof kOptions;
export type Config = { [K in OptionKey]: ValueOf<(typeof kOptions)[K]> };

/** The options as a list, in the table's order. */
export const kOptionList: ReadonlyArray<[OptionKey, OptionDef]> = Object.entries(kOptions) as Array<[OptionKey, OptionDef]>;
