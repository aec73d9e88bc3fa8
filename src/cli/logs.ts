/**
 * `livelycouch logs [-f]`: activation records read through the runtime's API,
 * `GET /_lively/activations?event=&worker=&status=&since=&limit=&before=` → `{ activations
 * (newest first), next? }`. The filters are also applied here, so a runtime that does not
 * filter yet still shows the right records. `-f` polls with `since` and prints each new
 * activation once, oldest first.
 */
import { LivelyError, describeError, isLivelyError } from '../shared/errors.ts';
import { getJson, type Target } from './client.ts';
import { activationLine, type ActivationView } from './format.ts';
import { UsageError, toInt } from './args.ts';

export interface LogsQuery {
  event?: string;
  worker?: string;
  status?: string;
  /** ms since the epoch. */
  since?: number;
  limit: number;
}

/** How far back each follow poll looks: a record is written when its activation ends, after it started. */
const kLookbackMs = 60_000;
const kPollMs = 500;
/** pages read per poll at most; more than this many new records per poll are not all shown. */
const kMaxPages = 20;
const kPage = 200;

/** `--since`: ISO time, ms since the epoch, or a duration ago (`90s`, `10m`, `2h`, `1d`). */
export function parseSince(v: string, now = Date.now()): number {
  const ago = /^(\d+)(ms|s|m|h|d)$/.exec(v);
  if (ago) return now - Number(ago[1]) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[ago[2] as 'ms'];
  if (/^\d+$/.test(v)) return Number(v);
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new UsageError(`--since must be an ISO time, ms since the epoch, or a duration such as 10m, got "${v}"`);
  return t;
}

export function logsQuery(flags: Record<string, string | true>): LogsQuery {
  const str = (k: string) => (typeof flags[k] === 'string' ? flags[k] as string : undefined);
  const status = str('status');
  if (status !== undefined && !['ok', 'error', 'timeout'].includes(status)) throw new UsageError(`--status must be ok, error or timeout, got "${status}"`);
  const limit = str('limit') === undefined ? 20 : toInt('limit', str('limit')!, 1);
  if (limit > 1000) throw new UsageError('--limit must be at most 1000');
  return { event: str('event'), worker: str('worker'), status, since: str('since') === undefined ? undefined : parseSince(str('since')!), limit };
}

export function matches(a: ActivationView, q: LogsQuery): boolean {
  if (q.event !== undefined && !(a.events ?? []).includes(q.event)) return false;
  if (q.worker !== undefined && !(a.workers ?? []).some((w) => w.worker === q.worker)) return false;
  if (q.status !== undefined && !(a.workers ?? []).some((w) => w.status === q.status)) return false;
  if (q.since !== undefined && typeof a.started === 'number' && a.started < q.since) return false;
  return true;
}

function queryString(q: LogsQuery, limit: number, before?: string): string {
  const p = new URLSearchParams();
  if (q.event !== undefined) p.set('event', q.event);
  if (q.worker !== undefined) p.set('worker', q.worker);
  if (q.status !== undefined) p.set('status', q.status);
  if (q.since !== undefined) p.set('since', String(q.since));
  p.set('limit', String(limit));
  if (before !== undefined) p.set('before', before);
  return p.toString();
}

interface Page { activations: ActivationView[]; next?: string }

async function page(target: Target, q: LogsQuery, limit: number, before?: string): Promise<Page> {
  const body = (await getJson(target, `/_lively/activations?${queryString(q, limit, before)}`)) as Partial<Page> | undefined;
  if (!body || !Array.isArray(body.activations)) throw new LivelyError('LC_BAD_REQUEST', 'the runtime answered /_lively/activations without an "activations" list');
  return { activations: body.activations.filter((a) => a && typeof a.activation === 'string'), next: typeof body.next === 'string' ? body.next : undefined };
}

/**
 * Up to `q.limit` matching records, newest first, following `next` while pages come back
 * short of matches; `stop` ends paging early (follow: a page holding only records seen before).
 */
export async function fetchActivations(target: Target, q: LogsQuery, opts: { maxPages?: number; stop?: (p: ActivationView[]) => boolean } = {}): Promise<ActivationView[]> {
  const out: ActivationView[] = [];
  const ids = new Set<string>();
  let before: string | undefined;
  for (let i = 0; i < (opts.maxPages ?? kMaxPages); i++) {
    const p = await page(target, q, Math.min(kPage, Math.max(q.limit, 1)), before);
    for (const a of p.activations) {
      if (ids.has(a.activation) || !matches(a, q)) continue;
      ids.add(a.activation);
      out.push(a);
      if (out.length >= q.limit) return out;
    }
    if (!p.next || p.next === before || opts.stop?.(p.activations)) break;
    before = p.next;
  }
  return out;
}

const byStart = (a: ActivationView, b: ActivationView) => (a.started ?? 0) - (b.started ?? 0);

export type Printer = (a: ActivationView) => void;

export function printer(json: boolean, write: (s: string) => void): Printer {
  return (a) => write(`${json ? JSON.stringify(a) : activationLine(a)}\n`);
}

export async function showLogs(target: Target, q: LogsQuery, print: Printer): Promise<void> {
  for (const a of (await fetchActivations(target, q)).sort(byStart)) print(a);
}

/**
 * Prints the last `q.limit` activations, then every new one once, until `signal` aborts.
 * While the runtime does not answer, `onAway` hears why once, and '' when it is back.
 */
export async function followLogs(target: Target, q: LogsQuery, print: Printer, signal?: AbortSignal, onAway?: (reason: string) => void): Promise<void> {
  const seen = new Map<string, number>();
  let away = false;
  const show = (list: ActivationView[]) => {
    for (const a of list.sort(byStart)) {
      if (seen.has(a.activation)) continue;
      seen.set(a.activation, a.started ?? Date.now());
      print(a);
    }
  };
  // What is recorded already counts as seen; of it, the last `limit` are shown.
  const start = Date.now();
  const baseline = await fetchActivations(target, { ...q, since: Math.max(q.since ?? 0, start - kLookbackMs), limit: kPage }, { maxPages: 1 });
  show(await fetchActivations(target, q));
  for (const a of baseline) if (!seen.has(a.activation)) seen.set(a.activation, a.started ?? start);
  while (!signal?.aborted) {
    await new Promise((r) => setTimeout(r, kPollMs));
    if (signal?.aborted) return;
    const newest = Math.max(start, ...seen.values());
    const since = Math.max(q.since ?? 0, newest - kLookbackMs);
    let fresh: ActivationView[];
    try {
      fresh = await fetchActivations(target, { ...q, since, limit: kPage * kMaxPages }, {
        stop: (p) => p.length > 0 && p.every((a) => seen.has(a.activation)),
      });
    } catch (err) {
      // The runtime restarting is no reason to stop following; anything else is.
      if (!isLivelyError(err, 'LC_STORE_UNAVAILABLE')) throw err;
      if (!away) onAway?.(describeError(err));
      away = true;
      continue;
    }
    if (away) onAway?.('');
    away = false;
    show(fresh.filter((a) => !seen.has(a.activation)));
    for (const [id, t] of seen) if (t < since - kLookbackMs) seen.delete(id);
  }
}
