/**
 * Live `_changes` feeds in the embedded store, held to what CouchDB 3 does. express-pouchdb left
 * the live feed and heartbeat of a closed client running for the store's life (any client could
 * slow the store with every feed it opened): here a route's feed is tied to its response and
 * stopped when that closes. A continuous feed without heartbeat ends after `timeout`, one with
 * `limit` after that many changes, and `feed=eventsource` is served (docs/stores.md).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** CouchDB's default `timeout` of a live feed, and the most the embedded store waits. */
const kFeedTimeout = 60_000;

/** A live feed's `timeout`: what the client asked for, at most kFeedTimeout (longpoll and continuous). */
export function feedTimeout(url: URL): number {
  const asked = Number(url.searchParams.get('timeout'));
  return Number.isFinite(asked) && asked > 0 ? Math.min(asked, kFeedTimeout) : kFeedTimeout;
}

/** Whether the response is over: ended here, or the client gone. */
function isOver(res: ServerResponse): boolean {
  return res.writableEnded || res.destroyed;
}

/** Ends a continuous feed with CouchDB's closing line, or (an event stream) with nothing more. */
function endFeed(res: ServerResponse, closingLine: boolean, lastSeq: unknown, pending: number): void {
  if (closingLine) res.end(`{"last_seq":${JSON.stringify(lastSeq ?? null)},"pending":${pending}}\n`);
  else res.end();
}
/** The longest interval node's timers take; a longer one would fire every millisecond. */
const kMaxTimer = 2 ** 31 - 1;

interface LiveFeed {
  emit(event: 'error' | 'complete', arg: unknown): boolean;
  on(event: 'complete' | 'error', fn: () => void): unknown;
  cancel(): void;
}
interface StoreDb { changes(...args: unknown[]): LiveFeed }

/** What the route wrote, as text: a change's JSON line, or a newline for a heartbeat. */
function chunkText(chunk: unknown): string {
  return typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk);
}

/** The `seq` of a change's JSON line, or `fallback` when the line is not a change. */
function seqOf(line: string, fallback: unknown): unknown {
  try { return (JSON.parse(line) as { seq?: unknown }).seq ?? fallback; } catch { return fallback; }
}

/** Why a `heartbeat` query value is refused, in CouchDB's words; undefined when it is valid. */
function heartbeatProblem(value: string): string | undefined {
  if (value === 'true') return undefined;
  if (!/^[+-]?\d+$/.test(value)) return 'Invalid heartbeat value. Expecting a positive integer value (in milliseconds).';
  if (Number(value) <= 0) return 'The heartbeat value should be a positive integer (in milliseconds).';
  return undefined;
}

/**
 * Checks `_changes`' `heartbeat` as CouchDB does (a value it refuses is a 400 whatever the
 * feed) and rewrites it to what express-pouchdb's timer should use: `true` is CouchDB's 60 s, a
 * value past node's timer limit is that limit, and a live feed without one gets none (where
 * express-pouchdb would send a newline every 6 s). Returns the reason for a 400, or undefined.
 */
export function normalizeHeartbeat(url: URL): string | undefined {
  const given = url.searchParams.get('heartbeat');
  const feed = url.searchParams.get('feed');
  if (given === null) {
    if (feed === 'continuous' || feed === 'longpoll') url.searchParams.set('heartbeat', String(kMaxTimer));
    return undefined;
  }
  const problem = heartbeatProblem(given);
  if (problem) return problem;
  url.searchParams.set('heartbeat', String(given === 'true' ? 60_000 : Math.min(Number(given), kMaxTimer)));
  return undefined;
}

let openFeeds = 0;
let lateWrites = 0;
/**
 * What a leak would grow (`GET /_lively_store/stats`, store admin): live feeds open now, and
 * writes a feed's route made after its client had gone (heartbeats of a feed nobody stopped).
 */
export function feedStats(): { live_feeds: number; late_writes: number } {
  return { live_feeds: openFeeds, late_writes: lateWrites };
}

/**
 * Ties the live feed this request's route will open (`continuous`, or the waiting half of a
 * `longpoll`) to `res`: when the response closes, the feed is stopped and the route cleans up.
 * The continuous route clears its heartbeat only on a feed error, so its feed reports one first,
 * which the route answers on a response that is over. The longpoll route clears it when its feed
 * completes, so its feed completes before it is cancelled, whoever cancels it.
 */
export function tieLiveFeed(req: IncomingMessage, res: ServerResponse, kind: 'continuous' | 'longpoll'): void {
  let feed: LiveFeed | undefined;
  let ended = false;
  let closed = false;
  const release = () => {
    if (!feed || ended) return;
    if (kind === 'continuous') {
      try { feed.emit('error', Object.assign(new Error('the client closed the feed'), { status: 499 })); } catch { /* nothing to answer */ }
    }
    feed.cancel();
  };
  // express-pouchdb hands the route the database as `req.db`, one object shared by every
  // request to it; the route gets its own view of it whose `changes` records the live feed.
  let view: StoreDb | undefined;
  Object.defineProperty(req, 'db', {
    configurable: true, enumerable: true,
    get: () => view,
    set: (shared: StoreDb) => {
      view = Object.create(shared) as StoreDb;
      view.changes = (...args: unknown[]) => {
        const opened = shared.changes(...args);
        if (feed || !(args[0] as { live?: unknown } | undefined)?.live) return opened;
        feed = opened;
        openFeeds++;
        // a feed that ended by itself (a change that answered a longpoll, an error the route
        // answered) needs nothing more
        const settled = () => { if (!ended) { ended = true; openFeeds--; } };
        opened.on('complete', settled);
        opened.on('error', settled);
        const cancel = opened.cancel.bind(opened);
        opened.cancel = () => {
          if (!ended && kind === 'longpoll') {
            try { opened.emit('complete', { status: 'cancelled' }); } catch { /* the route's clean-up is done */ }
          }
          settled();
          cancel();
        };
        // the client went before the feed opened: stopped once the route has its listeners on
        if (closed) queueMicrotask(release);
        return opened;
      };
    },
  });
  res.once('close', () => { closed = true; release(); });
  if (kind === 'continuous') guardOverResponse(res);
  const counted = res.write.bind(res);
  res.write = ((...a: Parameters<typeof counted>) => { if (closed) lateWrites++; return counted(...a); }) as typeof res.write;
}

/**
 * Once the response is over (ended here, or the client gone), what the continuous route still
 * writes or sets goes nowhere: answering the feed's error must not throw, or the route never
 * clears its heartbeat.
 */
function guardOverResponse(res: ServerResponse): void {
  const over = () => isOver(res);
  const write = res.write.bind(res);
  const end = res.end.bind(res);
  const setHeader = res.setHeader.bind(res);
  const writeHead = res.writeHead.bind(res);
  res.write = ((...a: Parameters<typeof write>) => (over() ? true : write(...a))) as typeof res.write;
  res.end = ((...a: Parameters<typeof end>) => (over() ? res : end(...a))) as typeof res.end;
  res.setHeader = ((...a: Parameters<typeof setHeader>) => (over() ? res : setHeader(...a))) as typeof res.setHeader;
  res.writeHead = ((...a: Parameters<typeof writeHead>) => (over() ? res : writeHead(...a))) as typeof res.writeHead;
}

/**
 * A continuous feed whose client asked for no heartbeat ends after `timeout` (CouchDB's default
 * and the most here: 60 s) in which nothing was sent, with CouchDB's closing line. `updateSeq`
 * gives the database's last sequence for it.
 */
export function endIdleFeed(res: ServerResponse, url: URL, db: string, updateSeq: (db: string) => Promise<unknown>, closingLine = true): void {
  const timeout = feedTimeout(url);
  let timer: NodeJS.Timeout | undefined;
  const finish = () => {
    if (isOver(res)) return;
    void updateSeq(db).catch(() => null).then((seq) => {
      if (isOver(res)) return;
      // the database was deleted under the feed: the client sees the connection end
      if (seq === undefined) { res.destroy(); return; }
      endFeed(res, closingLine, seq, 0);
    });
  };
  const arm = () => { clearTimeout(timer); timer = setTimeout(finish, timeout); };
  const write = res.write.bind(res);
  res.write = ((...a: Parameters<typeof write>) => {
    if (!isOver(res)) arm();
    return write(...a);
  }) as typeof res.write;
  res.once('close', () => clearTimeout(timer));
  arm();
}

/**
 * A continuous feed with `limit` ends after that many changes, as CouchDB's does (PouchDB's live
 * feed ignores it), with the closing line: `pending` is counted from the database's update
 * sequence, which counts every update where CouchDB counts changed documents, so it may say
 * more (never less) than CouchDB would. To be installed after `asEventSource`, so that it sees
 * the route's lines as they are.
 */
export function endAtLimit(res: ServerResponse, url: URL, db: string, updateSeq: (db: string) => Promise<unknown>, closingLine = true): void {
  const given = url.searchParams.get('limit');
  if (given === null || !/^\d+$/.test(given) || Number(given) < 1) return;
  const limit = Number(given);
  let sent = 0;
  let lastSeq: unknown = null;
  const write = res.write.bind(res);
  res.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (sent >= limit) return true;
    const text = chunkText(chunk);
    if (text.trim() !== '') {
      sent++;
      lastSeq = seqOf(text, lastSeq);
    }
    const ok = (write as (c: unknown, ...r: unknown[]) => boolean)(chunk, ...rest);
    if (sent === limit) {
      void updateSeq(db).catch(() => null).then((seq) => {
        if (isOver(res)) return;
        endFeed(res, closingLine, lastSeq, typeof seq === 'number' && typeof lastSeq === 'number' ? Math.max(0, seq - lastSeq) : 0);
      });
    }
    return ok;
  }) as typeof res.write;
}

/**
 * `feed=eventsource`, which express-pouchdb answers as a normal feed: the shield asks the route
 * for a continuous feed and this turns its lines into server-sent events as CouchDB sends
 * them — `data: <change>`, `id: <seq>` and a blank line per change, `event: heartbeat` for a
 * heartbeat — as `text/event-stream`. An error answered before the feed began stays JSON.
 */
export function asEventSource(res: ServerResponse): void {
  const write = res.write.bind(res);
  const setHeader = res.setHeader.bind(res);
  res.setHeader = ((name: string, value: number | string | readonly string[]) => {
    if (name.toLowerCase() === 'content-type' && res.statusCode === 200) {
      setHeader('Cache-Control', 'no-cache');
      return setHeader(name, 'text/event-stream');
    }
    return setHeader(name, value);
  }) as typeof res.setHeader;
  res.write = ((chunk: unknown, ...rest: unknown[]) => {
    const text = chunkText(chunk);
    const send = write as (c: string, ...r: unknown[]) => boolean;
    if (text.trim() === '') return send('event: heartbeat\ndata: \n\n', ...rest);
    let event = '';
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      event += `data: ${line}\nid: ${JSON.stringify(seqOf(line, null))}\n\n`;
    }
    return send(event, ...rest);
  }) as typeof res.write;
}
