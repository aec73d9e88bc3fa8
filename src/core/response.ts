/**
 * A worker's result as an HTTP response (events with `"response"`): checked once, where the
 * outcome is recorded, so that a malformed one is an error in the activation record, and
 * made ready for the server to send as it is.
 *
 *   { status?, headers?, body? | bodyBase64? }  → that response (status 200 by default)
 *     body: string → as is (text/plain; charset=utf-8 unless a content-type is given)
 *           any other JSON value → as JSON (application/json); null or absent → no body
 *     bodyBase64: string → those bytes (application/octet-stream unless given)
 *   anything else (including an object with other keys) → the whole result as a JSON 200
 */
import { LivelyError } from '../shared/errors.ts';
import type { WorkerResponse } from '../server/firer.ts';
import type { WorkerOutcome } from '../shared/message.ts';

export type { WorkerResponse };

/**
 * The response a responding worker's outcome was checked into (see checkResponse), so that it
 * is made once. An outcome made afresh since (a retried one) is not here, and is prepared again.
 */
const prepared = new WeakMap<WorkerOutcome, WorkerResponse>();

/**
 * A responding worker's ok outcome, its result made into its response now: one that is
 * malformed or over the limit fails the outcome, with the reason in the activation record.
 */
export function checkResponse(outcome: WorkerOutcome, limit: number): WorkerOutcome {
  try {
    prepared.set(outcome, prepareResponse(outcome.result, limit));
    return outcome;
  } catch (err) {
    const e = err as LivelyError;
    return { ...outcome, status: 'error', error: { code: e.code ?? 'LC_BAD_RESPONSE', message: e.message } };
  }
}

/** The response of a responding worker's ok outcome; throws LC_BAD_RESPONSE / LC_RESPONSE_TOO_LARGE. */
export function responseOf(outcome: WorkerOutcome, limit: number): WorkerResponse {
  return prepared.get(outcome) ?? prepareResponse(outcome.result, limit);
}

const kShapeKeys = new Set(['status', 'headers', 'body', 'bodyBase64']);

/**
 * Headers that concern one connection, not the response: the server sets them itself.
 * `content-length` is the body's, which the runtime measures.
 */
const kRefusedHeaders = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade',
  'proxy-authenticate', 'proxy-authorization', 'content-length']);

const kToken = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Field values: visible ASCII, spaces, tabs and bytes past 0x7f, but no CR, LF or NUL. */
const kFieldValue = /^[\t\x20-\x7e\x80-\xff]*$/;
const kBase64 = /^[A-Za-z0-9+/]*={0,2}$/;
const kNoBodyStatus = new Set([204, 205, 304]);

/** What `"response"` makes of a worker's result; throws LC_BAD_RESPONSE or LC_RESPONSE_TOO_LARGE. */
export function prepareResponse(result: unknown, limit: number): WorkerResponse {
  if (!isShaped(result)) return jsonResponse(200, {}, result, limit);
  const r = result as { status?: unknown; headers?: unknown; body?: unknown; bodyBase64?: unknown };
  const status = r.status === undefined ? 200 : r.status;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599) {
    throw bad(`status: must be a whole number from 200 to 599, not ${JSON.stringify(status) ?? String(status)}`);
  }
  const headers = checkHeaders(r.headers);
  if (r.body !== undefined && r.body !== null && r.bodyBase64 !== undefined) throw bad('give "body" or "bodyBase64", not both');
  let body: string | Buffer | undefined;
  if (r.bodyBase64 !== undefined) {
    if (typeof r.bodyBase64 !== 'string' || r.bodyBase64.length % 4 === 1 || !kBase64.test(r.bodyBase64)) throw bad('bodyBase64: must be a base64 string');
    // The declared size decides before any byte is decoded.
    const bytes = Math.floor(r.bodyBase64.length * 3 / 4);
    if (bytes > limit + 2) throw tooLarge(bytes, limit);
    body = Buffer.from(r.bodyBase64, 'base64');
    headers['content-type'] ??= 'application/octet-stream';
  } else if (typeof r.body === 'string') {
    body = r.body;
    headers['content-type'] ??= 'text/plain; charset=utf-8';
  } else if (r.body !== undefined && r.body !== null) {
    return jsonResponse(status, headers, r.body, limit);
  }
  if (body === undefined) return { status, headers, body: '', length: 0 };
  if (kNoBodyStatus.has(status) && body.length > 0) throw bad(`a ${status} response has no body`);
  return sized(status, headers, body, limit);
}

/** An object made only of the response keys, with a body, a numeric status or headers: a response. */
function isShaped(v: unknown): boolean {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  let shaped = false;
  for (const k in v) {
    if (!kShapeKeys.has(k)) return false;
    if (k !== 'status' || typeof (v as { status: unknown }).status === 'number') shaped = true;
  }
  return shaped;
}

function jsonResponse(status: number, headers: Record<string, string | string[]>, value: unknown, limit: number): WorkerResponse {
  const text = JSON.stringify(value);
  headers['content-type'] ??= 'application/json';
  if (text === undefined) return { status, headers, body: '', length: 0 };
  return sized(status, headers, text, limit);
}

function sized(status: number, headers: Record<string, string | string[]>, body: string | Buffer, limit: number): WorkerResponse {
  const length = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
  if (length > limit) throw tooLarge(length, limit);
  return { status, headers, body, length };
}

function checkHeaders(h: unknown): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  if (h === undefined || h === null) return out;
  if (typeof h !== 'object' || Array.isArray(h)) throw bad('headers: must be an object of header names and values');
  for (const [name, value] of Object.entries(h as Record<string, unknown>)) {
    const lower = name.toLowerCase();
    if (!kToken.test(name)) throw bad(`headers: ${JSON.stringify(name)} is not a header name`);
    if (kRefusedHeaders.has(lower)) {
      throw bad(`headers: "${lower}" is ${lower === 'content-length' ? 'measured by the runtime' : 'a hop-by-hop header, which only the server sets'}`);
    }
    const values = Array.isArray(value) ? value : [value];
    const texts: string[] = [];
    for (const v of values) {
      if (typeof v !== 'string' && typeof v !== 'number') throw bad(`headers.${lower}: must be a string, a number or a list of them`);
      const text = String(v);
      if (!kFieldValue.test(text)) throw bad(`headers.${lower}: must not contain CR, LF or NUL`);
      texts.push(text);
    }
    if (texts.length === 0) continue;
    const had = out[lower];
    const all = had === undefined ? texts : [...(Array.isArray(had) ? had : [had]), ...texts];
    out[lower] = all.length === 1 ? all[0]! : all;
  }
  return out;
}

function bad(why: string): LivelyError {
  return new LivelyError('LC_BAD_RESPONSE', `the worker's response is malformed: ${why}`);
}

function tooLarge(bytes: number, limit: number): LivelyError {
  return new LivelyError('LC_RESPONSE_TOO_LARGE', responseTooLargeReason(limit), { bytes });
}

/** What the client reads: the limit, named, and nothing of the worker. */
export function responseTooLargeReason(limit: number): string {
  return `the response body is over LIVELY_RESPONSE_LIMIT (${limit} bytes)`;
}
