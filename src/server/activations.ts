/**
 * The activation records API under /_lively/activations:
 *
 *   GET  /_lively/activations?event=&worker=&status=&since=&limit=&before=
 *                                          → 200 {"activations":[newest first],"next"?: cursor}
 *                                            400 naming a bad or unknown parameter
 *   GET  /_lively/activations/<id>         → 200 the record, 404 LC_NOT_FOUND
 *   POST /_lively/activations/<id>/rerun   → 202 {"ok":true,"activation","events","workers"}
 *                                            200 … + "outcomes" with ?wait=true
 *                                            404 unknown id or an event gone, 409 input not kept
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LivelyError } from '../shared/errors.ts';
import type { ActivationQuery } from '../activations/reader.ts';
import type { EventFirer } from './firer.ts';
import { readBody } from './body.ts';
import { sendJson } from './reply.ts';

export const kActivationsPath = '/_lively/activations';

const kListParams = new Set(['event', 'worker', 'status', 'since', 'limit', 'before']);
const kStatuses = new Set(['ok', 'error', 'timeout', 'dead']);

function bad(reason: string): LivelyError {
  return new LivelyError('LC_BAD_REQUEST', reason);
}

/** The list query from the URL; every problem is a 400 naming the parameter. */
export function parseActivationQuery(params: URLSearchParams): ActivationQuery {
  const seen = new Set<string>();
  for (const key of params.keys()) {
    if (!kListParams.has(key)) throw bad(`unknown parameter "${key}": use ${[...kListParams].join(', ')}`);
    if (seen.has(key)) throw bad(`${key} may be given once`);
    seen.add(key);
  }
  const q: ActivationQuery = { limit: 20 };
  const limit = params.get('limit');
  if (limit !== null) {
    q.limit = /^\d+$/.test(limit) ? Number(limit) : NaN;
    if (!Number.isInteger(q.limit) || q.limit < 1 || q.limit > 1000) throw bad('limit must be an integer from 1 to 1000');
  }
  for (const key of ['event', 'worker', 'before'] as const) {
    const v = params.get(key);
    if (v === null) continue;
    if (v === '') throw bad(`${key} must not be empty`);
    q[key] = v;
  }
  const status = params.get('status');
  if (status !== null) {
    if (!kStatuses.has(status)) throw bad('status must be ok, error, timeout or dead');
    q.status = status as ActivationQuery['status'];
  }
  const since = params.get('since');
  if (since !== null) {
    const t = /^\d+$/.test(since) ? Number(since) : /^\d{4}-\d\d-\d\d/.test(since) ? Date.parse(since) : NaN;
    if (!Number.isSafeInteger(t)) throw bad('since must be an ISO time (2026-01-31T12:00:00Z) or milliseconds since the epoch');
    q.since = t;
  }
  return q;
}

function activationId(segment: string): string {
  try {
    const id = decodeURIComponent(segment);
    if (id !== '') return id;
  } catch { /* reported below */ }
  throw bad('the activation id in the path is not valid');
}

function requireMethod(req: IncomingMessage, allow: string[], pathname: string): void {
  if (!allow.includes(req.method ?? 'GET')) {
    throw new LivelyError('LC_METHOD_NOT_ALLOWED', `${pathname} accepts ${allow.filter((m) => m !== 'HEAD').join(', ')} only`, { allow });
  }
}

/** Answers any request under /_lively/activations. */
export async function handleActivations(req: IncomingMessage, res: ServerResponse, pathname: string, search: string, firer: EventFirer, bodyLimit: number): Promise<void> {
  const parts = pathname.slice(kActivationsPath.length).split('/'); // ['', id, 'rerun']
  const params = new URLSearchParams(search);
  if (parts.length === 1 || (parts.length === 2 && parts[1] === '')) {
    requireMethod(req, ['GET', 'HEAD'], pathname);
    if (!firer.activations) throw new LivelyError('LC_NOT_FOUND', 'this runtime keeps no activation records');
    sendJson(res, 200, await firer.activations(parseActivationQuery(params)));
    return;
  }
  if (parts.length === 2) {
    requireMethod(req, ['GET', 'HEAD'], pathname);
    if (!firer.activation) throw new LivelyError('LC_NOT_FOUND', 'this runtime keeps no activation records');
    sendJson(res, 200, await firer.activation(activationId(parts[1]!)));
    return;
  }
  if (parts.length === 3 && parts[2] === 'rerun') {
    requireMethod(req, ['POST'], pathname);
    if (!firer.rerun) throw new LivelyError('LC_NOT_FOUND', 'this runtime cannot rerun activations');
    // Nothing is read from the body; it is drained so the connection can be reused.
    await readBody(req, bodyLimit);
    const flag = params.get('wait');
    const wait = flag === 'true' || flag === '1';
    const reply = await firer.rerun(activationId(parts[1]!), wait);
    const out: Record<string, unknown> = { ok: true, activation: reply.activation, events: reply.events, workers: reply.workers };
    if (reply.outcomes !== undefined) out.outcomes = reply.outcomes;
    sendJson(res, wait ? 200 : 202, out);
    return;
  }
  throw new LivelyError('LC_NOT_FOUND', `no such path: ${pathname}`);
}
