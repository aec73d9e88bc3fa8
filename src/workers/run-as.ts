/**
 * Process workers of a runtime that runs as root run as an unprivileged user (`nobody` unless
 * configured: `workerUser`, LIVELY_WORKER_RUN_AS; empty turns it off). That user can read its
 * own revision directory and nothing else of the data directory: the data directory and
 * `workers/` only let it pass through (0711), everything else there (the store, the admin
 * secret, the bundle cache, the runtime's state files) is 0700/0600 and root's.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chown, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { chmod, readdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { LivelyError } from '../shared/errors.ts';

export interface RunAs {
  uid: number;
  gid: number;
  /** as configured: a user name or a uid. */
  name: string;
}

const chownAsync = promisify(chown);

/** Who process workers run as: undefined when the runtime is not root or the setting is empty. */
export function resolveRunAs(setting: string, uid: number | undefined = process.getuid?.()): RunAs | undefined {
  if (uid !== 0 || setting === '') return undefined;
  const numeric = /^(\d+)(?::(\d+))?$/.exec(setting);
  if (numeric) {
    const u = Number(numeric[1]);
    return { uid: u, gid: numeric[2] !== undefined ? Number(numeric[2]) : u, name: setting };
  }
  const local = fromPasswd(setting);
  if (local) return { ...local, name: setting };
  try {
    const u = Number(execFileSync('id', ['-u', setting], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    const g = Number(execFileSync('id', ['-g', setting], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    if (Number.isInteger(u) && Number.isInteger(g)) return { uid: u, gid: g, name: setting };
  } catch { /* below */ }
  throw new LivelyError('LC_CONFIG', `options.workerUser: there is no user "${setting}" to run process workers as (a user name, a uid, or "" to keep root)`);
}

/**
 * A local user's uid and primary group from /etc/passwd (what `id` answers for them, without a
 * process each); undefined for users it does not list (NSS, LDAP), which `id` is asked about.
 */
function fromPasswd(name: string): { uid: number; gid: number } | undefined {
  let text: string;
  try { text = readFileSync('/etc/passwd', 'utf8'); } catch { return undefined; }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] !== name || f.length < 4) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (f[2] !== '' && f[3] !== '' && Number.isInteger(uid) && Number.isInteger(gid)) return { uid, gid };
  }
  return undefined;
}

/**
 * Makes the data directory passable but not readable for the workers' user: called at start,
 * before the store and the dispatchers write into it.
 */
export function lockDataDir(dataDir: string): void {
  mkdirSync(dataDir, { recursive: true });
  chmodSync(dataDir, 0o711);
  mkdirSync(path.join(dataDir, 'workers'), { recursive: true });
  for (const name of ['store', 'etc', 'cache']) mkdirSync(path.join(dataDir, name), { recursive: true, mode: 0o700 });
  for (const name of readdirSync(dataDir)) {
    const p = path.join(dataDir, name);
    if (name === 'workers') { chmodSync(p, 0o711); continue; }
    chmodSync(p, statSync(p).isDirectory() ? 0o700 : 0o600);
  }
}

/** Hands a revision directory (and its files) to the workers' user; its parent only lets them pass. */
export async function handOver(dir: string, runAs: RunAs): Promise<void> {
  await chmod(path.dirname(dir), 0o711);
  await chownAsync(dir, runAs.uid, runAs.gid);
  for (const name of await readdir(dir)) await chownAsync(path.join(dir, name), runAs.uid, runAs.gid);
}
