/**
 * How the command line reaches a runtime and its store: which URL, which credentials.
 *
 * The runtime's own API (`/_lively/*`) takes CouchDB admin credentials by Basic auth. They come
 * from --user / LIVELY_USER, else from COUCHDB_URL, else from the runtime running on the data
 * directory (its state file), else from the embedded store's admin secret in the data directory.
 * Every password read is registered with `redactSecrets`, so no message the CLI prints shows it.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/index.ts';
import { LivelyError, describeError } from '../shared/errors.ts';
import { kAdminName, kPasswordFile } from '../store/embedded/contract.ts';
import { UsageError } from './args.ts';

export interface Credentials { user: string; password: string }

export interface Target {
  /** the runtime's origin, without credentials. */
  url: string;
  credentials?: Credentials;
}

/** What `livelycouch start` leaves in the data directory while it runs. */
export interface RuntimeState { url: string; pid: number; storeUrl: string }

export const stateFile = (c: Pick<Config, 'dataDir'>) => path.join(c.dataDir, 'runtime.json');

const secrets = new Set<string>();

function remember(c: Credentials | undefined): Credentials | undefined {
  if (c?.password) {
    secrets.add(c.password);
    secrets.add(encodeURIComponent(c.password));
  }
  return c;
}

/** `text` with every password the CLI knows, and any URL userinfo, masked. */
export function redactSecrets(text: string): string {
  let out = text.replace(/(\/\/[^/\s:@]+):[^@\s/]*@/g, '$1:***@');
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join('***');
  return out;
}

/** The state file of a runtime that is still running on this data directory. */
export async function runningRuntime(c: Pick<Config, 'dataDir'>): Promise<RuntimeState | undefined> {
  let state: RuntimeState;
  try {
    state = JSON.parse(await readFile(stateFile(c), 'utf8')) as RuntimeState;
  } catch {
    return undefined;
  }
  remember(credentialsOfUrl(state.storeUrl));
  try {
    process.kill(state.pid, 0);
    return state;
  } catch (err) {
    // EPERM: it runs, as another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? state : undefined;
  }
}

export function credentialsOfUrl(url: string | undefined): Credentials | undefined {
  if (!url) return undefined;
  try {
    const u = new URL(url);
    if (!u.username) return undefined;
    return remember({ user: decodeURIComponent(u.username), password: decodeURIComponent(u.password) });
  } catch {
    return undefined;
  }
}

/** `NAME:PASSWORD`, or `NAME` with LIVELY_PASSWORD. */
export function parseUser(value: string, env: NodeJS.ProcessEnv = process.env): Credentials {
  const colon = value.indexOf(':');
  const c = colon === -1 ? { user: value, password: env.LIVELY_PASSWORD ?? '' } : { user: value.slice(0, colon), password: value.slice(colon + 1) };
  if (!c.user) throw new UsageError('--user needs NAME:PASSWORD');
  return remember(c)!;
}

function originOf(raw: string, what: string): { origin: string; credentials?: Credentials } {
  let u: URL;
  try { u = new URL(raw); } catch {
    throw new UsageError(`${what} is not a URL: ${redactSecrets(raw)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`${what} must be an http(s) URL`);
  const credentials = credentialsOfUrl(raw);
  return { origin: `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`, credentials };
}

async function embeddedAdmin(c: Pick<Config, 'dataDir'>): Promise<Credentials | undefined> {
  try {
    const password = (await readFile(path.join(c.dataDir, kPasswordFile), 'utf8')).trim();
    return password ? remember({ user: kAdminName, password }) : undefined;
  } catch {
    return undefined;
  }
}

export interface TargetFlags { url?: string; user?: string }

/** --url / LIVELY_URL with --user / LIVELY_USER, when given. */
export function explicitTarget(flags: TargetFlags, env: NodeJS.ProcessEnv = process.env): Target | undefined {
  const raw = flags.url ?? (env.LIVELY_URL || undefined);
  if (!raw) return undefined;
  const { origin, credentials } = originOf(raw, flags.url ? '--url' : 'LIVELY_URL');
  const userFlag = flags.user ?? (env.LIVELY_USER || undefined);
  return { url: origin, credentials: userFlag ? parseUser(userFlag, env) : credentials };
}

/**
 * The runtime to talk to, with admin credentials for its API. `admin: false` (triggers) sends
 * only credentials the user named.
 */
export async function resolveTarget(c: Config, flags: TargetFlags, opts: { admin: boolean }, env: NodeJS.ProcessEnv = process.env): Promise<Target> {
  const explicit = explicitTarget(flags, env);
  if (explicit) return explicit;
  const running = await runningRuntime(c);
  const url = running ? originOf(running.url, 'the runtime URL').origin : `http://${c.host.includes(':') ? `[${c.host}]` : c.host}:${c.port}`;
  const userFlag = flags.user ?? (env.LIVELY_USER || undefined);
  if (userFlag) return { url, credentials: parseUser(userFlag, env) };
  if (!opts.admin) return { url };
  const credentials = credentialsOfUrl(c.couchUrl) ?? credentialsOfUrl(running?.storeUrl) ?? (await embeddedAdmin(c));
  return { url, credentials };
}

/** The CouchDB URL (with credentials) that store commands use when pointed at a runtime by --url: its proxy. */
export function storeUrlThrough(target: Target): string {
  const u = new URL(target.url);
  if (target.credentials) {
    u.username = encodeURIComponent(target.credentials.user);
    u.password = encodeURIComponent(target.credentials.password);
  }
  return u.toString().replace(/\/$/, '');
}

export interface ApiReply { status: number; body: unknown; text: string }

/** One request to the runtime. Connection failures become one clear line. */
export async function call(target: Target, method: string, pathAndQuery: string, opts: { body?: string; headers?: Record<string, string> } = {}): Promise<ApiReply> {
  const headers: Record<string, string> = { accept: 'application/json', ...(opts.headers ?? {}) };
  if (target.credentials) {
    headers.authorization = `Basic ${Buffer.from(`${target.credentials.user}:${target.credentials.password}`).toString('base64')}`;
  }
  let res;
  try {
    res = await send(new URL(`${target.url}${pathAndQuery}`), method, headers, opts.body);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ECONNREFUSED') throw new LivelyError('LC_STORE_UNAVAILABLE', `no runtime answers at ${target.url} (start one with "livelycouch start", or point at one with --url)`);
    throw new LivelyError('LC_STORE_UNAVAILABLE', `${target.url}: ${describeError(err)}`);
  }
  let body: unknown = res.text;
  try { body = JSON.parse(res.text); } catch { /* not JSON */ }
  return { status: res.status, body, text: res.text };
}

/**
 * node:http rather than an HTTP client package, so that a command loads nothing more to make
 * its one request; no timeout (`logs -f` and `trigger --wait` may wait long), no kept connection.
 */
async function send(url: URL, method: string, headers: Record<string, string>, body: string | undefined): Promise<{ status: number; text: string }> {
  // loaded here: `--help` and `--version` need no HTTP at all
  const client = url.protocol === 'https:' ? (await import('node:https')).default : (await import('node:http')).default;
  return new Promise((resolve, reject) => {
    const req = client.request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** `401 LC_UNAUTHORIZED: reason` for an error reply. */
export function replyError(reply: ApiReply): string {
  const b = reply.body as { error?: unknown; reason?: unknown } | undefined;
  if (b && typeof b === 'object' && (b.error || b.reason)) return `${reply.status} ${String(b.error ?? '')}${b.reason ? `: ${String(b.reason)}` : ''}`;
  return `${reply.status} ${reply.text.slice(0, 200).replace(/\s+/g, ' ')}`;
}

/** A successful JSON reply's body, or an error naming the status. */
export async function getJson(target: Target, pathAndQuery: string): Promise<unknown> {
  const reply = await call(target, 'GET', pathAndQuery);
  if (reply.status === 401 && !target.credentials) {
    throw new LivelyError('LC_UNAUTHORIZED', `${replyError(reply)} (give admin credentials with --user NAME:PASSWORD or LIVELY_USER)`);
  }
  if (reply.status >= 400) throw new LivelyError('LC_BAD_REQUEST', replyError(reply));
  return reply.body;
}
