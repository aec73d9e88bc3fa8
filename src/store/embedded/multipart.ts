/**
 * A `multipart/related` document upload (what nano's `db.multipart.insert` and CouchDB
 * replication send) turned into the plain JSON document with inline base64 attachments.
 * express-pouchdb's own handler crashes its process on these bodies, so the shield
 * converts them before the request reaches it.
 */

export class MultipartError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'MultipartError';
  }
}

interface Part {
  headers: Record<string, string>;
  body: Buffer;
}

const kCrlf = Buffer.from('\r\n');
const kHeaderEnd = Buffer.from('\r\n\r\n');

export function boundaryOf(contentType: string | undefined): string | undefined {
  if (!contentType || !/^multipart\/related\b/i.test(contentType)) return undefined;
  const m = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : undefined;
}

function parseHeaders(block: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of block.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return headers;
}

/** Splits the body into parts. A part's `content-length`, when given, wins over boundary search,
 * so binary data that happens to contain the boundary text is still read whole. */
export function splitParts(body: Buffer, boundary: string): Part[] {
  const dash = Buffer.from('--' + boundary);
  const delimiter = Buffer.concat([kCrlf, dash]);
  let pos = body.indexOf(dash);
  if (pos < 0) throw new MultipartError('multipart body has no boundary');
  pos += dash.length;
  const parts: Part[] = [];
  for (;;) {
    if (body.subarray(pos, pos + 2).toString() === '--') return parts;
    if (!body.subarray(pos, pos + 2).equals(kCrlf)) throw new MultipartError('malformed multipart boundary line');
    pos += 2;
    const headerEnd = body.indexOf(kHeaderEnd, pos);
    // a part without headers starts straight after the boundary's CRLF
    const noHeaders = body.subarray(pos, pos + 2).equals(kCrlf);
    if (!noHeaders && headerEnd < 0) throw new MultipartError('multipart part has no header end');
    const headers = noHeaders ? {} : parseHeaders(body.subarray(pos, headerEnd).toString('latin1'));
    const start = noHeaders ? pos + 2 : headerEnd + 4;
    let end: number;
    const declared = headers['content-length'];
    if (declared !== undefined && /^\d+$/.test(declared)) {
      end = start + Number(declared);
      if (end > body.length || body.indexOf(delimiter, end) !== end) {
        throw new MultipartError('multipart part length does not match its content-length');
      }
    } else {
      end = body.indexOf(delimiter, start);
      if (end < 0) throw new MultipartError('multipart part is not terminated');
    }
    parts.push({ headers, body: body.subarray(start, end) });
    pos = end + delimiter.length;
  }
}

type Doc = Record<string, unknown> & { _attachments?: Record<string, Record<string, unknown>> };

/** The document of a multipart/related upload, its `follows` attachments filled in from the parts in order. */
export function multipartToDocument(body: Buffer, contentType: string | undefined): Doc {
  const boundary = boundaryOf(contentType);
  if (!boundary) throw new MultipartError('multipart/related needs a boundary parameter');
  const [first, ...rest] = splitParts(body, boundary);
  if (!first) throw new MultipartError('multipart body has no document part');
  let doc: unknown;
  try { doc = JSON.parse(first.body.toString('utf8')); } catch {
    throw new MultipartError('the first multipart part is not a JSON document');
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new MultipartError('the first multipart part is not a JSON object');
  }
  const d = doc as Doc;
  const atts = d._attachments ?? {};
  if (typeof atts !== 'object' || Array.isArray(atts)) throw new MultipartError('_attachments must be an object');
  const following = Object.keys(atts).filter((name) => atts[name] && atts[name].follows === true);
  if (following.length !== rest.length) {
    throw new MultipartError(`document announces ${following.length} attachments but the body has ${rest.length}`);
  }
  following.forEach((name, i) => {
    const part = rest[i]!;
    const stub = atts[name]!;
    if (typeof stub.length === 'number' && stub.length !== part.body.length) {
      throw new MultipartError(`attachment ${name} has ${part.body.length} bytes, its stub says ${stub.length}`);
    }
    const contentType = (stub.content_type as string | undefined) ?? part.headers['content-type'] ?? 'application/octet-stream';
    atts[name] = { content_type: contentType, data: part.body.toString('base64') };
  });
  return d;
}
