/**
 * What the supervisor and the embedded store child agree on. Imported by both sides,
 * so it imports nothing.
 */

/** The admin the embedded store is created with; its password lives in `kPasswordFile`. */
export const kAdminName = 'lively';
export const kPasswordFile = 'store-admin.secret';

/** Environment variables of the child's own. */
export const Env = {
  /** the file NODE_EXTRA_CA_CERTS named in the supervisor, read at the child's first TLS connection (./extra-ca.ts). */
  extraCa: 'LIVELY_STORE_EXTRA_CA',
  /** `off`: the store admin's `_bulk_docs` go through express-pouchdb too, not the shield's direct lane (./direct-bulk.ts). */
  directBulk: 'LIVELY_STORE_DIRECT_BULK',
} as const;

const kOtherCaStores = ['--use-openssl-ca', '--use-system-ca'];

/**
 * The environment changes for the store's child: NODE_EXTRA_CA_CERTS moved to Env.extraCa, so
 * that node does not read it at the child's start (./extra-ca.ts), unless the supervisor's node
 * trusts another CA store. `undefined` removes a variable.
 */
export function storeCaEnv(env: NodeJS.ProcessEnv, execArgv: readonly string[]): Record<string, string | undefined> {
  const file = env.NODE_EXTRA_CA_CERTS;
  if (!file) return {};
  const flags = [...execArgv, ...(env.NODE_OPTIONS ?? '').split(/\s+/)];
  if (flags.some((f) => kOtherCaStores.includes(f))) return {};
  return { NODE_EXTRA_CA_CERTS: undefined, [Env.extraCa]: file };
}

/**
 * The supervisor's one IPC message: what the child is started with. Not in the environment:
 * another process of the same user could read the password in /proc/<pid>/environ, and a child
 * spawned early (./spawn.ts) is spawned before the runtime has read its configuration.
 */
export interface StartMessage {
  password: string;
  dataDir: string;
  /** 0: any free loopback port (the first start); a restart asks for the port it had. */
  port: number;
  /** databases in memory only. */
  memory: boolean;
  /** anonymous clients may sign up in `_users`. */
  signup: boolean;
  /** on disk, every write is synced before it is answered (./sync-writes.ts). */
  sync: boolean;
  /** the environment the child runs with, in place of the one it was spawned with. */
  env: Record<string, string>;
}

export function isStartMessage(m: unknown): m is StartMessage {
  if (typeof m !== 'object' || m === null) return false;
  const s = m as Partial<StartMessage>;
  return typeof s.password === 'string' && s.password !== '' && typeof s.dataDir === 'string' && s.dataDir !== ''
    && Number.isInteger(s.port) && typeof s.memory === 'boolean' && typeof s.signup === 'boolean' && typeof s.sync === 'boolean'
    && typeof s.env === 'object' && s.env !== null && Object.values(s.env).every((v) => typeof v === 'string');
}

/** The one line the child prints on stdout once it listens. */
export interface ReadyLine {
  ready: true;
  port: number;
  /** the child syncs every write to disk before answering it (on disk, asked to, and installed). */
  sync: boolean;
}

export function parseReadyLine(line: string): ReadyLine | undefined {
  try {
    const v = JSON.parse(line) as Partial<ReadyLine>;
    if (v && v.ready === true && typeof v.port === 'number') return { ready: true, port: v.port, sync: v.sync === true };
  } catch { /* not the ready line */ }
  return undefined;
}
