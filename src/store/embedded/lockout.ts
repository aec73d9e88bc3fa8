/**
 * Apache CouchDB 3.4+'s login lockout (`[chttpd_auth_lockout]`, on by default), so that the
 * embedded store answers repeated wrong passwords as CouchDB does: after `threshold` failed
 * logins of one name from one address, that name is refused from that address with a 403 —
 * the right password too — until `lifetimeMs` has passed since those failures.
 *
 * The address is CouchDB's (mochiweb's) `peer`: the socket's, or, when that is loopback or a
 * private network, the last `X-Forwarded-For` entry (a proxy in front says whose request it is).
 */
import type { IncomingMessage } from 'node:http';

export const kLockedOut = { error: 'forbidden', reason: 'Account is temporarily locked due to multiple authentication failures' };

export class Lockout {
  private readonly failures = new Map<string, number[]>();

  constructor(private readonly threshold = 5, private readonly lifetimeMs = 300_000) {}

  private recent(key: string, now: number): number[] {
    const times = (this.failures.get(key) ?? []).filter((t) => now - t < this.lifetimeMs);
    if (times.length === 0) this.failures.delete(key);
    else this.failures.set(key, times);
    return times;
  }

  locked(peer: string, name: string): boolean {
    return this.recent(`${peer}\0${name}`, Date.now()).length >= this.threshold;
  }

  failed(peer: string, name: string): void {
    const key = `${peer}\0${name}`;
    const times = this.recent(key, Date.now());
    times.push(Date.now());
    this.failures.set(key, times.slice(-this.threshold));
    // a flood of made-up names must not grow the map without end
    if (this.failures.size > 100_000) this.failures.delete(this.failures.keys().next().value!);
  }
}

function trustsForwarded(address: string): boolean {
  const a = address.replace(/^::ffff:/, '');
  return a === '127.0.0.1' || a === '::1' || /^10\./.test(a) || /^192\.168\./.test(a) || /^172\.(1[6-9]|2\d|3[01])\./.test(a);
}

/** The address CouchDB would count a request's failed logins under. */
export function peerOf(req: IncomingMessage): string {
  const address = req.socket.remoteAddress ?? '';
  const forwarded = req.headers['x-forwarded-for'];
  if (forwarded !== undefined && trustsForwarded(address)) {
    const last = (Array.isArray(forwarded) ? forwarded.join(',') : forwarded).split(',').map((s) => s.trim()).filter(Boolean).pop();
    if (last) return last;
  }
  return address.replace(/^::ffff:/, '');
}

/** The name a Basic authorization header logs in as, undefined for none. */
export function basicNameOf(req: IncomingMessage): string | undefined {
  const m = /^basic\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (m === null) return undefined;
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  return colon === -1 ? undefined : text.slice(0, colon);
}
