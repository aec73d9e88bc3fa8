/**
 * Reading and parsing a trigger request's body.
 *
 * What a worker gets as `request.body`, by Content-Type:
 *   application/json, any `+json`        → the parsed value (400 LC_BAD_JSON if it is not JSON)
 *   application/x-www-form-urlencoded    → an object of fields (repeated fields → arrays)
 *   no Content-Type, text/*, xml, javascript, ndjson, or any type with a `charset`
 *                                        → the body as a UTF-8 string
 *   anything else (octet-stream, images, multipart, …)
 *                                        → the body as a base64 string
 *   an empty body                        → undefined
 * The type decides, never the bytes, so a worker always knows which one it gets.
 */
import type { IncomingMessage } from 'node:http';
import { parse as parseQueryString } from 'node:querystring';
import { LivelyError } from '../shared/errors.ts';
import { kTooDeep, nestedDeeperThan } from '../shared/json.ts';

/**
 * Reads the whole body up to `limit` bytes. Throws LC_BODY_TOO_LARGE as soon as
 * the declared or the received size passes the limit, without keeping the excess.
 * Resolves undefined when the request has no body.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  if (skipEmptyBody(req)) return Promise.resolve(undefined);
  const declared = req.headers['content-length'];
  if (declared !== undefined) {
    // node's parser has already refused a Content-Length that is not digits.
    const n = Number(declared);
    if (n > limit) return Promise.reject(new LivelyError('LC_BODY_TOO_LARGE', `request body of ${n} bytes is over the limit of ${limit}`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onFail);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        done();
        chunks.length = 0;
        reject(new LivelyError('LC_BODY_TOO_LARGE', `request body is over the limit of ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      done();
      if (size === 0) resolve(undefined);
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onFail = (err: Error): void => {
      done();
      reject(new LivelyError('LC_BAD_REQUEST', `request body could not be read: ${err.message}`));
    };
    // A client that goes away mid-body ends in 'close' without 'end'.
    const onClose = (): void => {
      if (!req.complete) onFail(new Error('the client closed the connection'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onFail);
    req.on('close', onClose);
  });
}

/** Whether the request declares no body: neither Content-Length nor Transfer-Encoding, or a Content-Length of 0. */
export function hasNoBody(headers: IncomingMessage['headers']): boolean {
  const declared = headers['content-length'];
  // node's parser has already refused a Content-Length that is not digits.
  return declared === undefined ? headers['transfer-encoding'] === undefined : Number(declared) === 0;
}

/**
 * When the request declares no body, lets node finish it (a declared empty body is
 * still resumed) and returns true: there is nothing to read, so nothing to wait for.
 */
export function skipEmptyBody(req: IncomingMessage): boolean {
  if (!hasNoBody(req.headers)) return false;
  if (req.headers['content-length'] !== undefined) req.resume();
  return true;
}

/** The media type of a Content-Type header, lower-cased, without parameters. */
function mediaType(contentType: string): string {
  const semi = contentType.indexOf(';');
  return (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

const kTextTypes = new Set(['application/xml', 'application/javascript', 'application/x-ndjson', 'application/ndjson', 'application/yaml', 'application/x-yaml']);

function isTextual(contentType: string, type: string): boolean {
  return type.startsWith('text/') || type.endsWith('+xml') || kTextTypes.has(type) || /;\s*charset=/i.test(contentType);
}

export function parseBody(buf: Buffer | undefined, contentType: string | undefined): unknown {
  if (buf === undefined || buf.length === 0) return undefined;
  if (contentType === undefined) return buf.toString('utf8');
  const type = mediaType(contentType);
  if (type === 'application/json' || type.endsWith('+json')) return parseJson(buf.toString('utf8'));
  if (type === 'application/x-www-form-urlencoded') return parseQueryString(buf.toString('utf8'));
  if (isTextual(contentType, type)) return buf.toString('utf8');
  return buf.toString('base64');
}

export function parseJson(text: string): unknown {
  if (nestedDeeperThan(text)) throw new LivelyError('LC_BAD_JSON', `request body is ${kTooDeep}`);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new LivelyError('LC_BAD_JSON', `request body is not valid JSON: ${(err as Error).message}`);
  }
}

