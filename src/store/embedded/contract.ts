/**
 * What the supervisor and the embedded store child agree on. Imported by both sides,
 * so it imports nothing.
 */

/** The admin the embedded store is created with; its password lives in `kPasswordFile`. */
export const kAdminName = 'lively';
export const kPasswordFile = 'store-admin.secret';

/**
 * Environment variables the supervisor hands the child. The admin password is not among them:
 * another process of the same user could read it in /proc/<pid>/environ. It comes as the first
 * IPC message, a PasswordMessage.
 */
export const Env = {
  dataDir: 'LIVELY_STORE_DATA',
  port: 'LIVELY_STORE_PORT',
  memory: 'LIVELY_STORE_MEMORY',
  parentPid: 'LIVELY_STORE_PARENT',
  /** '1': anonymous clients may sign up in `_users`. */
  signup: 'LIVELY_STORE_SIGNUP',
  /** the file NODE_EXTRA_CA_CERTS named in the supervisor, read at the child's first TLS connection (./extra-ca.ts). */
  extraCa: 'LIVELY_STORE_EXTRA_CA',
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

export interface PasswordMessage {
  password: string;
}

export function isPasswordMessage(m: unknown): m is PasswordMessage {
  return typeof m === 'object' && m !== null && typeof (m as PasswordMessage).password === 'string' && (m as PasswordMessage).password !== '';
}

/** The one line the child prints on stdout once it listens. */
export interface ReadyLine {
  ready: true;
  port: number;
}

export function parseReadyLine(line: string): ReadyLine | undefined {
  try {
    const v = JSON.parse(line) as Partial<ReadyLine>;
    if (v && v.ready === true && typeof v.port === 'number') return { ready: true, port: v.port };
  } catch { /* not the ready line */ }
  return undefined;
}
