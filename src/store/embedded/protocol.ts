/**
 * What the supervisor and the embedded store child agree on. Imported by both sides,
 * so it imports nothing.
 */

/** The admin the embedded store is created with; its password lives in `kPasswordFile`. */
export const kAdminName = 'lively';
export const kPasswordFile = 'store-admin.secret';

/** Environment variables the supervisor hands the child. */
export const Env = {
  dataDir: 'LIVELY_STORE_DATA',
  port: 'LIVELY_STORE_PORT',
  memory: 'LIVELY_STORE_MEMORY',
  password: 'LIVELY_STORE_PASSWORD',
  parentPid: 'LIVELY_STORE_PARENT',
} as const;

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
