/**
 * Continuous `_changes` feeds in the embedded store, held to what CouchDB 3 does.
 *
 * express-pouchdb's continuous route starts a live PouchDB feed and a heartbeat interval, and
 * releases both only when the feed reports an error: a client that closes its feed leaves them
 * running for the life of the store process, writing heartbeats into a closed response and
 * reading every later write to the database. Any client could make the store slower with every
 * feed it opened and closed. Here the feed the route opens is tied to its response: when the
 * response closes, the feed reports an error (the one path on which the route clears its
 * heartbeat) and is cancelled.
 *
 * Without a `heartbeat`, CouchDB ends a continuous feed after `timeout` ms (default and most
 * 60 s) in which no change was sent, with a `{"last_seq":…,"pending":0}` line; express-pouchdb
 * never ends it and sends a newline every 6 s instead. The shield asks the route for no
 * heartbeat then (see `normalizeHeartbeat`) and ends the feed here.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** CouchDB's default, and the most the embedded store waits (as for longpoll). */
const kFeedTimeout = 60_000;
/** The longest interval node's timers take; a longer one would fire every millisecond. */
const kMaxTimer = 2 ** 31 - 1;

interface LiveFeed {
  emit(event: 'error', err: Error): boolean;
  on(event: 'complete' | 'error', fn: () => void): unknown;
  cancel(): void;
}
interface StoreDb { changes(...args: unknown[]): LiveFeed }

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

/** Continuous feeds open now: what a leak would grow (`GET /_lively_store/stats`, store admin). */
let openFeeds = 0;
export function liveFeedCount(): number {
  return openFeeds;
}

/**
 * Ties the continuous feed this request's route will open to `res`, and when the client asked
 * for no heartbeat (`idle`) ends the response after `timeout` without a change, as CouchDB
 * does. `updateSeq` gives the database's last sequence for the closing line.
 */
export function tieContinuousFeed(req: IncomingMessage, res: ServerResponse, url: URL, db: string, idle: boolean, updateSeq: (db: string) => Promise<unknown>): void {
  let feed: LiveFeed | undefined;
  let ended = false;
  const release = () => {
    if (!feed || ended) return;
    ended = true;
    openFeeds--;
    // The route clears its heartbeat interval only on a feed error, after answering it: on a
    // response that is closed or already ended, where the answer goes nowhere (below).
    try { feed.emit('error', Object.assign(new Error('the client closed the feed'), { status: 499 })); } catch { /* nothing to answer */ }
    feed.cancel();
  };
  // express-pouchdb hands the route the database as `req.db`, one object shared by every
  // request to it; the route gets its own view of it whose `changes` records the feed.
  let view: StoreDb | undefined;
  Object.defineProperty(req, 'db', {
    configurable: true, enumerable: true,
    get: () => view,
    set: (shared: StoreDb) => {
      view = Object.create(shared) as StoreDb;
      view.changes = (...args: unknown[]) => {
        const opened = shared.changes(...args);
        if (feed) return opened;
        feed = opened;
        openFeeds++;
        // a feed that ended by itself (an error the route answered) is released already
        const settled = () => { if (!ended) { ended = true; openFeeds--; } };
        opened.on('complete', settled);
        opened.on('error', settled);
        if (res.destroyed) queueMicrotask(release);
        return opened;
      };
    },
  });
  res.once('close', release);

  // Once the response is over (ended here, or the client gone), what the route still writes or
  // sets goes nowhere: answering the feed's error must not throw, or the route never clears
  // its heartbeat.
  const over = () => res.writableEnded || res.destroyed;
  const write = res.write.bind(res);
  const end = res.end.bind(res);
  const setHeader = res.setHeader.bind(res);
  const writeHead = res.writeHead.bind(res);
  res.end = ((...a: Parameters<typeof end>) => (over() ? res : end(...a))) as typeof res.end;
  res.setHeader = ((...a: Parameters<typeof setHeader>) => (over() ? res : setHeader(...a))) as typeof res.setHeader;
  res.writeHead = ((...a: Parameters<typeof writeHead>) => (over() ? res : writeHead(...a))) as typeof res.writeHead;
  if (!idle) {
    res.write = ((...a: Parameters<typeof write>) => (over() ? true : write(...a))) as typeof res.write;
    return;
  }
  const asked = Number(url.searchParams.get('timeout'));
  const timeout = Number.isFinite(asked) && asked > 0 ? Math.min(asked, kFeedTimeout) : kFeedTimeout;
  let timer: NodeJS.Timeout | undefined;
  const finish = () => {
    if (over()) return;
    void updateSeq(db).catch(() => null).then((seq) => {
      if (over()) return;
      // the database was deleted under the feed: the client sees the connection end
      if (seq === undefined) { res.destroy(); return; }
      // through res.end as it is now: express-pouchdb's compression may wrap it
      res.end(`{"last_seq":${JSON.stringify(seq ?? null)},"pending":0}\n`);
    });
  };
  const arm = () => { clearTimeout(timer); timer = setTimeout(finish, timeout); };
  res.write = ((...a: Parameters<typeof write>) => {
    if (over()) return true;
    arm();
    return write(...a);
  }) as typeof res.write;
  res.once('close', () => clearTimeout(timer));
  arm();
}
