/**
 * How the embedded store's child process is spawned: its node arguments, its environment, and
 * the early spawn that `livelycouch start` and `dev` make before the runtime has loaded.
 *
 * The child spends most of its start loading PouchDB and express-pouchdb, which needs nothing of
 * the runtime's configuration. So bin/livelycouch.js spawns it first thing (`spawnEarlyStore`),
 * and the child loads its packages while this process loads the runtime, reads the configuration
 * and locks the data directory. The supervisor then takes that child over for its first start
 * (`takeEarlyStore`) and sends it what it is started with (contract.ts, StartMessage). Until then
 * the child has no data directory, no port and no password: it holds nothing. A child that is
 * not taken over is stopped (`dropEarlyStore`), or ends with this process (its IPC channel
 * closes); one that ends before it is taken over is replaced by a fresh spawn.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { withoutCredentials } from '../../shared/credentials.ts';
import { kDistDir } from '../../shared/dist.ts';
import { storeCaEnv } from './contract.ts';

/** The child's node arguments: the built server, or the source through tsx (resolved here, so
 * the child finds it whatever the runtime's working directory is). */
export const kStoreChildArgs: readonly string[] = kDistDir
  ? [path.join(kDistDir, 'store-server.js')]
  : ['--import', import.meta.resolve('tsx'), fileURLToPath(new URL('./server.ts', import.meta.url))];

/**
 * The environment of the store's child: this process's, without credentials (the child's
 * /proc/<pid>/environ is readable by every process of the user), NODE_EXTRA_CA_CERTS moved
 * (contract.ts, storeCaEnv). Variables set to undefined are left out.
 */
export function storeChildEnv(env: NodeJS.ProcessEnv = process.env, execArgv: readonly string[] = process.execArgv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...withoutCredentials(env), ...storeCaEnv(env, execArgv) })) if (v !== undefined) out[k] = v;
  return out;
}

/** Spawns the store's child (node `args`), waiting for its StartMessage; it ends with this process. */
export function spawnStoreChild(args: readonly string[] = kStoreChildArgs): ChildProcess {
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    // Its own process group: a Ctrl-C or a signal to the runtime's group must not kill the
    // store before the runtime has flushed into it. It still ends with the runtime (IPC).
    detached: true,
    env: storeChildEnv(),
  });
  // the IPC channel exists so the child notices our death and gets its start; it must not keep us alive
  child.unref();
  child.channel?.unref();
  (child.stdout as unknown as { unref?: () => void }).unref?.();
  (child.stderr as unknown as { unref?: () => void }).unref?.();
  return child;
}

let early: ChildProcess | undefined;

/**
 * Spawns the store's child before the runtime is loaded, for the supervisor to take over. Not
 * when the command names an Apache CouchDB (COUCHDB_URL or --couch) or only asks for help: the
 * runtime then starts no embedded store.
 */
export function spawnEarlyStore(args: readonly string[], env: NodeJS.ProcessEnv = process.env): void {
  if (early || env.COUCHDB_URL) return;
  if (args.some((a) => a === '--couch' || a.startsWith('--couch=') || a === '--help' || a === '-h')) return;
  early = spawnStoreChild();
  // spawned for a start that may never come (a command that fails first): nobody waits on it
  early.on('error', () => undefined);
}

/** The early child, if there is one and it still runs; only the first caller gets it. */
export function takeEarlyStore(): ChildProcess | undefined {
  const child = early;
  early = undefined;
  if (!child || child.exitCode !== null || child.signalCode !== null || !child.connected) {
    child?.kill('SIGKILL');
    return undefined;
  }
  return child;
}

/** Stops the early child when the runtime will not take it over (another store, a command that ends). */
export function dropEarlyStore(): void {
  early?.kill('SIGKILL');
  early = undefined;
}
