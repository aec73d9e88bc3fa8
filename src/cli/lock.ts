/**
 * One runtime per data directory, and a port that is free: checked before anything starts, so
 * a second `livelycouch start` fails at once with one line naming the runtime already there
 * (instead of the embedded store's database lock failing deep inside, then a refused connection).
 *
 * `<dataDir>/runtime.lock` is created exclusively and holds the owner's pid; a lock whose pid
 * is gone (a runtime killed with SIGKILL) is taken over.
 */
import { open, readFile, rm, mkdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { LivelyError } from '../shared/errors.ts';
import { stateFile } from './client.ts';

const alive = (pid: number) => {
  try { process.kill(pid, 0); return true; } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM'; }
};

/** Takes the data directory's lock; resolves to its release. Throws LC_DATA_DIR_IN_USE. */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  await mkdir(dataDir, { recursive: true });
  const file = path.join(dataDir, 'runtime.lock');
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await open(file, 'wx', 0o600);
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      return async () => {
        const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
        if (pid === process.pid) await rm(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
    }
    const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
      const state = await readFile(stateFile({ dataDir }), 'utf8').then((t) => JSON.parse(t) as { url?: unknown; pid?: unknown }, () => undefined);
      const where = state?.pid === pid && typeof state.url === 'string' ? `at ${state.url}` : '(still starting)';
      throw new LivelyError('LC_DATA_DIR_IN_USE', `the data directory ${dataDir} is in use by the runtime with pid ${pid} ${where}`, { pid });
    }
    await rm(file, { force: true }); // its runtime is gone
  }
}

/** Throws LC_PORT_IN_USE when `port` (not 0) cannot be listened on at `host`. */
export async function checkPort(host: string, port: number): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') reject(new LivelyError('LC_PORT_IN_USE', `port ${port} on ${host} is in use by another program (choose another with --port)`, { port }));
      else if (err.code === 'EACCES') reject(new LivelyError('LC_PORT_IN_USE', `port ${port} on ${host} may not be used by this user (choose another with --port)`, { port }));
      else reject(err);
    });
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve()));
  });
}
