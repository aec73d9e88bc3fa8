/** Starts a Runtime on the suite's store under a fresh database prefix, on a free port. */
import { request } from 'undici';
import { makeConfig, type ConfigInput } from '../../src/config/index.ts';
import { Runtime } from '../../src/runtime.ts';
import type { Dispatcher } from '../../src/workers/dispatcher.ts';
import type { Logger } from '../../src/shared/logger.ts';
import { couchUrl, uniquePrefix } from './couch.ts';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
/** eventually() lives in ./eventually.ts (couch.ts uses it too); specs import it from here beside startRuntime. */
import { eventually } from './eventually.ts';
export { eventually };

/** A Runtime whose data directory the helper made, and removes once the runtime stopped. */
class SpecRuntime extends Runtime {
  ownDataDir?: string;

  override async stop(deadlineMs?: number): Promise<void> {
    await super.stop(deadlineMs);
    if (this.ownDataDir) rmSync(this.ownDataDir, { recursive: true, force: true });
  }
}

export async function startRuntime(opts: { config?: ConfigInput; dispatchers?: Dispatcher[]; before?: (prefix: string) => Promise<void>; logger?: Logger; isolateEngine?: string } = {}): Promise<Runtime> {
  const prefix = opts.config?.dbPrefix ?? uniquePrefix();
  if (opts.before) await opts.before(prefix);
  const ownDataDir = opts.config?.dataDir === undefined ? mkdtempSync(path.join(os.tmpdir(), 'lively-rt-')) : undefined;
  const config = makeConfig({
    couchUrl: couchUrl(),
    port: 0,
    threads: 2,
    sample: false,
    logLevel: 'silent',
    // specs' workers write into the spec's own temporary directories (root's, 0700): they run
    // as the spec's user; spec/security/credentials.spec.ts covers the default (root → nobody)
    workerUser: '',
    ...opts.config,
    ...(ownDataDir ? { dataDir: ownDataDir } : {}),
    dbPrefix: prefix,
  });
  const rt = new SpecRuntime({ config, dispatchers: opts.dispatchers, logger: opts.logger, isolateEngine: opts.isolateEngine });
  rt.ownDataDir = ownDataDir;
  try {
    return await rt.start();
  } catch (err) {
    if (ownDataDir) rmSync(ownDataDir, { recursive: true, force: true });
    throw err;
  }
}

/** POSTs a JSON body to `/_events<p>` of a runtime; the reply's status and parsed body. */
export async function postEvent(rt: Runtime, p: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await request(`${rt.url}/_events${p}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });
  return { status: res.statusCode, body: await res.body.json() };
}

/** GETs `/_events<p>` (with `?wait=true` in `p`) until the runtime answers 200 — a freshly
 * deployed event appears through the events database's `_changes` — and returns the first outcome. */
export async function firstOutcome(rt: Runtime, p: string, ms = 10_000): Promise<any> {
  let body: any;
  await eventually(async () => {
    const res = await request(`${rt.url}/_events${p}`);
    body = await res.body.json();
    return res.statusCode === 200;
  }, ms, p);
  return body.outcomes[0];
}
