/**
 * JSON replies. Every answer LivelyCouch itself gives (as opposed to what the
 * proxy passes through from CouchDB) goes through here, so that an error is
 * always `{"error": code, "reason": message}` with the status of its code.
 */
import type { ServerResponse } from 'node:http';
import { LivelyError } from '../shared/errors.ts';
import type { WorkerResponse } from './firer.ts';


export function sendJson(res: ServerResponse, status: number, body: unknown, extra?: Record<string, string>): void {
  if (res.headersSent) {
    // A reply already started cannot be turned into an error; cutting the
    // connection is the only honest signal left.
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  sendJsonText(res, status, text, Buffer.byteLength(text), extra);
}

/** A JSON reply already serialised, `bytes` long in UTF-8. */
export function sendJsonText(res: ServerResponse, status: number, text: string, bytes: number, extra?: Record<string, string>): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': bytes,
  };
  if (extra) Object.assign(headers, extra);
  res.writeHead(status, headers);
  res.end(text);
}

/**
 * Fire-and-forget answers (202) of one turn of the event loop, written together: the first of a
 * turn at once, the rest at its end. Under load one turn reads dozens of triggers from as many
 * connections. Answered one by one as they are read, each answer finds the client asleep again
 * and wakes it anew, and the kernel charges that wake-up to the runtime's write; written
 * together, they wake it about twice a turn. A lone request is the first of its turn, answered
 * at once as before. Order on a connection is node's to keep: a later response on the same
 * connection waits for an earlier one in any case. Measured: docs/benchmarks.md.
 */
export class TurnReplies<Req> {
  private held: Array<{ req: Req; res: ServerResponse; text: string; bytes: number; extra: Record<string, string> | undefined }> = [];
  private turn = false;

  /** `failed` answers what writing a held reply threw, as it would have been answered at once. */
  constructor(private readonly failed: (req: Req, res: ServerResponse, err: unknown) => void) {}

  private readonly endTurn = (): void => {
    this.turn = false;
    const held = this.held;
    if (held.length === 0) return;
    this.held = [];
    for (const r of held) {
      try {
        sendJsonText(r.res, 202, r.text, r.bytes, r.extra);
      } catch (err) {
        this.failed(r.req, r.res, err);
      }
    }
  };

  /** Answers 202 with `text` (`bytes` long in UTF-8) now, or at the end of this turn. */
  accepted(req: Req, res: ServerResponse, text: string, bytes: number, extra?: Record<string, string>): void {
    if (!this.turn) {
      this.turn = true;
      setImmediate(this.endTurn);
      sendJsonText(res, 202, text, bytes, extra);
      return;
    }
    this.held.push({ req, res, text, bytes, extra });
  }
}

/** Status codes whose response has no body, and so no Content-Length either. */
const kBodiless = new Set([204, 304]);

/**
 * A worker's response, its body written once as it is (node leaves it out for HEAD). `extra`
 * (the event's CORS headers) is laid over the worker's headers; a `vary` of both is kept whole.
 */
export function sendResponse(res: ServerResponse, r: WorkerResponse, extra?: Record<string, string>): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  let headers: Record<string, string | string[] | number> = r.headers;
  if (extra !== undefined || !kBodiless.has(r.status)) {
    headers = { ...r.headers };
    if (!kBodiless.has(r.status)) headers['content-length'] = r.length;
    if (extra !== undefined) {
      const vary = headers.vary;
      Object.assign(headers, extra);
      if (vary !== undefined && extra.vary !== undefined) headers.vary = `${Array.isArray(vary) ? vary.join(', ') : vary}, ${extra.vary}`;
    }
  }
  res.writeHead(r.status, headers);
  res.end(r.body);
}

/** Printable ASCII but `"` and `\`: a JSON string's text as it is, one byte per character. */
const kPlainText = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/**
 * The reply to a fired trigger, `{"ok":true,"activation","events","workers"[,"outcomes"]}`:
 * the very text JSON.stringify gives for that object, and its length in bytes. Written by hand:
 * ids and names are almost always plain ASCII, needing neither escapes nor a UTF-8 count
 * (docs/benchmarks.md, "Choices the measurements made").
 */
export function firedReplyJson(activation: string, events: readonly string[], workers: readonly string[], outcomes: unknown): { text: string; bytes: number } {
  allPlain = true;
  let text = `{"ok":true,"activation":${jsonString(activation)},"events":${jsonStrings(events)},"workers":${jsonStrings(workers)}`;
  if (outcomes !== undefined) {
    text += `,"outcomes":${JSON.stringify(outcomes)}`;
    allPlain = false;
  }
  text += '}';
  return { text, bytes: allPlain ? text.length : Buffer.byteLength(text) };
}

/** Whether every string jsonString wrote since firedReplyJson began was plain ASCII. */
let allPlain = true;

function jsonString(s: string): string {
  if (typeof s === 'string' && kPlainText.test(s)) return `"${s}"`;
  allPlain = false;
  return JSON.stringify(s) ?? 'null';
}

function jsonStrings(xs: readonly string[]): string {
  let out = '[';
  for (let i = 0; i < xs.length; i++) out += (i === 0 ? '' : ',') + jsonString(xs[i]!);
  return out + ']';
}

/** Maps anything thrown while handling a request to a JSON reply. */
export function sendError(res: ServerResponse, err: unknown, extra?: Record<string, string>): void {
  if (err instanceof LivelyError) {
    const headers: Record<string, string> = { ...err.headers, ...extra };
    if (err.code === 'LC_QUEUE_FULL' || err.code === 'LC_SHUTTING_DOWN') headers['retry-after'] = '1';
    if (err.code === 'LC_UNAUTHORIZED') headers['www-authenticate'] = 'Basic realm="LivelyCouch"';
    const allow = err.details?.allow;
    if (err.code === 'LC_METHOD_NOT_ALLOWED' && Array.isArray(allow)) headers.allow = allow.join(', ');
    sendJson(res, err.status, err.toJSON(), headers);
    return;
  }
  // The details of a bug go to the log (the caller's job), not to the client.
  sendJson(res, 500, new LivelyError('LC_INTERNAL').toJSON(), extra);
}
