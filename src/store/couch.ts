/**
 * The one place that constructs nano. Everything in LivelyCouch that talks to CouchDB (Apache
 * CouchDB 3.x or the embedded store) gets its client and store helpers from here.
 */
import nano from 'nano';
import { LivelyError, describeError } from '../shared/errors.ts';

export type ServerScope = nano.ServerScope;
export type DocumentScope<D = unknown> = nano.DocumentScope<D>;

/** A nano client for `url` (credentials in the URL, e.g. `http://admin:pw@127.0.0.1:5984`). */
export function connect(url: string): nano.ServerScope {
  let parsed: URL;
  try { parsed = new URL(url); } catch {
    throw new LivelyError('LC_CONFIG', `CouchDB URL is not a valid URL: ${redact(url)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new LivelyError('LC_CONFIG', `CouchDB URL must be http or https: ${redact(url)}`);
  }
  return nano({ url: parsed.toString().replace(/\/$/, '') });
}

/** The URL without its password, for logs and error messages. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<invalid url>';
  }
}

/** The HTTP status of a nano error, undefined when the request never got an answer. */
/** The `Authorization: Basic …` value for the credentials a CouchDB URL carries, or undefined when it carries none. */
export function basicAuthOf(url: string | URL): string | undefined {
  const u = typeof url === 'string' ? new URL(url) : url;
  if (!u.username) return undefined;
  return `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
}

export function statusOf(err: unknown): number | undefined {
  const s = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

/** Whether a failure is the store being away (restarting, unreachable) rather than an answer. */
export function isTransient(err: unknown): boolean {
  const status = statusOf(err);
  if (status === undefined) return (err as { name?: string } | null)?.name !== 'AbortError';
  return status === 429 || status >= 500;
}

/** Creates the database unless it exists. */
export async function ensureDb(server: nano.ServerScope, name: string): Promise<void> {
  try {
    await server.db.create(name);
  } catch (err) {
    // 412: it exists (CouchDB and the embedded store agree on this one)
    if (statusOf(err) !== 412) throw err;
  }
}

export interface RetryOptions {
  /** attempts in all, the first included. */
  attempts?: number;
  /** first delay; doubled after each failure. */
  delay?: number;
  maxDelay?: number;
  signal?: AbortSignal;
}

export const kDefaultRetry = Object.freeze({ attempts: 8, delay: 100, maxDelay: 5_000 });

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(t); reject(signal!.reason); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/**
 * Runs `fn` again while the store is away (connection refused, 5xx, 429), so a call made
 * while the embedded store restarts succeeds once it is back. Any other failure is thrown
 * at once; when the attempts run out the last error becomes LC_STORE_UNAVAILABLE.
 */
export async function retry<T>(fn: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? kDefaultRetry.attempts;
  const maxDelay = options.maxDelay ?? kDefaultRetry.maxDelay;
  let delay = options.delay ?? kDefaultRetry.delay;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransient(err)) throw err;
      if (attempt >= attempts) {
        throw new LivelyError('LC_STORE_UNAVAILABLE', `CouchDB is unavailable: ${describeError(err)}`, { attempts });
      }
      await sleep(delay, options.signal);
      delay = Math.min(delay * 2, maxDelay);
    }
  }
}

export { sleep };
