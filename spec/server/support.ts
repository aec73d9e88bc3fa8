/**
 * What the server specs share: a recording EventFirer (the runtime's side of the
 * contract, replying per a table of paths) and a raw-socket exchange for requests
 * an HTTP client would refuse to send.
 */
import net from 'node:net';
import { LivelyError } from '../../src/shared/errors.ts';
import type { EventFirer, HttpTriggerReply, HttpTriggerRequest } from '../../src/server/firer.ts';

/**
 * Paths it knows: `/missing` → 404, `/readonly` → 405 unless GET, `/busy` → 503,
 * `/bug` → a plain Error; anything else fires event `ev<path>` on worker `w`.
 */
export class RecordingFirer implements EventFirer {
  readonly requests: HttpTriggerRequest[] = [];
  healthy = true;
  healthThrows = false;

  /** Answers (and throws) synchronously, as the runtime does for a trigger that needs no waiting. */
  sync = false;

  fireHttp(req: HttpTriggerRequest): HttpTriggerReply | Promise<HttpTriggerReply> {
    if (this.sync) return this.answer(req);
    return new Promise((resolve) => resolve(this.answer(req)));
  }

  private answer(req: HttpTriggerRequest): HttpTriggerReply {
    this.requests.push(req);
    switch (req.path) {
      case '/missing': throw new LivelyError('LC_NO_EVENT', `no event matches ${req.path}`);
      case '/readonly':
        if (req.method !== 'GET') throw new LivelyError('LC_METHOD_NOT_ALLOWED', 'only GET', { allow: ['GET'] });
        break;
      case '/busy': throw new LivelyError('LC_QUEUE_FULL');
      case '/bug': throw new Error('a bug in the runtime');
    }
    const reply: HttpTriggerReply = { activation: `act-${this.requests.length}`, events: [`ev${req.path}`], workers: ['w'] };
    if (req.wait) reply.outcomes = [{ worker: 'w', status: 'ok', result: { echoed: req.query }, logs: [], durationMs: 1 }];
    return reply;
  }

  async health(): Promise<{ ok: boolean; store: boolean }> {
    if (this.healthThrows) throw new Error('health check broke');
    return { ok: this.healthy, store: this.healthy };
  }

  async status(): Promise<Record<string, unknown>> {
    return { events: 3, invalid: [{ id: 'bad', reason: 'trigger.path must be a string' }] };
  }

  last(): HttpTriggerRequest {
    const r = this.requests[this.requests.length - 1];
    if (!r) throw new Error('no request reached the firer');
    return r;
  }
}

export interface RawReply {
  status: number;
  headers: Record<string, string>;
  body: string;
  raw: Buffer;
}

/** Parses one HTTP/1.1 response; throws unless it is well-formed. */
export function parseReply(raw: Buffer): RawReply {
  const text = raw.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end === -1) throw new Error(`no end of headers in ${JSON.stringify(text.slice(0, 200))}`);
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const m = /^HTTP\/1\.1 (\d{3}) [^\r\n]*$/.exec(statusLine!);
  if (!m) throw new Error(`bad status line ${JSON.stringify(statusLine)}`);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`bad header line ${JSON.stringify(line)}`);
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  const body = raw.subarray(Buffer.byteLength(text.slice(0, end + 4), 'latin1'));
  if (headers['content-length'] !== undefined && body.length < Number(headers['content-length'])) {
    throw new Error(`body of ${body.length} bytes, content-length says ${headers['content-length']}`);
  }
  return { status: Number(m[1]), headers, body: body.toString('utf8'), raw };
}

/**
 * Writes `parts` on a fresh connection and collects what comes back until the
 * server closes, `untilBytes` arrive after a complete header block, or `timeoutMs`.
 */
export function rawExchange(port: number, parts: Array<string | Buffer>, opts: { halfClose?: boolean; timeoutMs?: number } = {}): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(port, '127.0.0.1');
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks));
    };
    const timer = setTimeout(finish, opts.timeoutMs ?? 5_000);
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', () => finish());
    socket.on('close', finish);
    socket.on('connect', () => {
      for (const p of parts) socket.write(p);
      if (opts.halfClose) socket.end();
    });
  });
}
