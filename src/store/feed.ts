/**
 * Following one database's `_changes` through nano: longpoll with `since`, one batch at a time.
 * `since` moves (and the checkpoint is written) only after the batch was handled, so a crash,
 * a store restart or a lost connection replays from the last handled batch: at-least-once,
 * nothing skipped. Sequence ids are opaque strings (Apache CouchDB 3.x): passed back as received.
 *
 * With `heartbeat` the store is asked to send a newline while a longpoll waits, and a poll
 * that stays silent for longer than `2 × heartbeat + 1 s` is taken for a dropped connection:
 * it is abandoned and retried like any other failure, instead of hanging forever.
 */
import { EventEmitter } from 'node:events';
import type nano from 'nano';
import { request } from 'undici';
import { LivelyError, describeError } from '../shared/errors.ts';
import { silentLogger, type Logger } from '../shared/logger.ts';
import { credentialsApart, sleep, statusOf, type ChangeRow, type DbRef } from './couch.ts';


export interface ChangesFeedOptions {
  /** where to start: 'now' (only what happens from here on), '0' (everything) or a saved seq. */
  since?: string;
  includeDocs?: boolean;
  /** a Mango selector: only matching changes are delivered (`filter=_selector`). */
  selector?: Record<string, unknown>;
  /** most changes per batch: handled together, then checkpointed (what a crash can repeat). */
  batchSize?: number;
  /** most changes read per request to the store (default: batchSize); a page of several batches is handled batch by batch. */
  pageSize?: number;
  /** longpoll timeout the store is asked for, ms. */
  timeout?: number;
  /** longest wait between retries after a failure, ms. */
  maxBackoff?: number;
  /** ms between the store's keep-alive newlines; a poll silent for twice as long (+1 s) is retried. */
  heartbeat?: number;
  logger?: Logger;
  /** handles one batch; `since` advances only after it resolves. */
  onBatch: (results: ChangeRow[], lastSeq: string) => Promise<void>;
  /** called with the new `since` once a batch was handled (e.g. saves a `_local` checkpoint). */
  checkpoint?: (seq: string) => Promise<void>;
}

export const kDefaultFeedOptions = Object.freeze({
  since: 'now',
  includeDocs: false,
  batchSize: 500,
  timeout: 30_000,
  maxBackoff: 60_000,
});
const kBackoffStart = 100;

/** Events: 'page' ({ results, pending?, lastSeq }) after every answer of the store; 'batch'
 * (results, lastSeq) after a batch was handled; 'retry' (error, delay); 'error' (fatal: the
 * feed has stopped); 'stop'. */
export class ChangesFeed extends EventEmitter {
  private readonly db: DbRef;
  private readonly opts: Required<Omit<ChangesFeedOptions, 'selector' | 'checkpoint' | 'heartbeat' | 'pageSize'>> & Pick<ChangesFeedOptions, 'selector' | 'checkpoint' | 'heartbeat'> & { pageSize: number };
  private sinceSeq: string;
  private controller: AbortController | undefined;
  private isRunning = false;
  private done: Promise<void> | undefined;
  private batch: Promise<void> | undefined;

  constructor(db: DbRef, options: ChangesFeedOptions) {
    super();
    if (!options || typeof options.onBatch !== 'function') {
      throw new LivelyError('LC_CONFIG', 'options.onBatch must be a function');
    }
    const opts = { ...kDefaultFeedOptions, logger: silentLogger, ...stripUndefined(options) };
    if (typeof opts.since !== 'string' || opts.since === '') throw new LivelyError('LC_CONFIG', 'options.since must be a non-empty string');
    for (const key of ['batchSize', 'timeout', 'maxBackoff'] as const) {
      if (!Number.isInteger(opts[key]) || opts[key] < 1) throw new LivelyError('LC_CONFIG', `options.${key} must be a positive integer`);
    }
    if (opts.heartbeat !== undefined && (!Number.isInteger(opts.heartbeat) || opts.heartbeat < 1)) {
      throw new LivelyError('LC_CONFIG', 'options.heartbeat must be a positive integer');
    }
    if (opts.pageSize !== undefined && (!Number.isInteger(opts.pageSize) || opts.pageSize < 1)) {
      throw new LivelyError('LC_CONFIG', 'options.pageSize must be a positive integer');
    }
    this.db = db;
    this.opts = { ...opts, pageSize: Math.max(opts.pageSize ?? opts.batchSize, opts.batchSize) };
    this.sinceSeq = opts.since;
  }

  /** The seq after the last handled batch (or the start `since`). */
  get since(): string {
    return this.sinceSeq;
  }

  get running(): boolean {
    return this.isRunning;
  }

  start(): this {
    if (this.isRunning) return this;
    this.isRunning = true;
    this.controller = new AbortController();
    this.done = this.loop(this.controller.signal);
    return this;
  }

  /**
   * Stops the feed; resolves once no batch is being handled any more. A longpoll still
   * waiting on the store is abandoned, not awaited: under load the store may take its full
   * timeout to answer, and nothing it says after stop() is handled.
   */
  async stop(): Promise<void> {
    if (this.isRunning) {
      this.isRunning = false;
      this.controller?.abort();
    }
    await this.batch;
  }

  private async loop(signal: AbortSignal): Promise<void> {
    const { logger, maxBackoff } = this.opts;
    let backoff = kBackoffStart;
    // the next page, asked for while a full batch is handled (dropped if that batch fails)
    let prefetched: { since: string; page: Promise<ChangesPage>; abort: AbortController } | undefined;
    while (!signal.aborted) {
      let page: ChangesPage;
      try {
        if (prefetched && prefetched.since === this.sinceSeq) {
          const p = prefetched.page;
          prefetched = undefined;
          page = await p;
        } else {
          prefetched?.abort.abort();
          prefetched = undefined;
          page = await this.poll(signal, this.sinceSeq);
        }
      } catch (err) {
        if (signal.aborted) break;
        const status = statusOf(err);
        if (status !== undefined && status >= 400 && status < 500 && status !== 429) {
          this.isRunning = false;
          this.emit('error', new LivelyError('LC_STORE_UNAVAILABLE', `_changes of ${this.db.config.db} failed: ${describeError(err)}`, { status }));
          break;
        }
        logger.warn('changes feed retrying', { db: this.db.config.db, error: describeError(err), in: backoff });
        this.emit('retry', err, backoff);
        await sleep(backoff, signal).catch(() => undefined);
        backoff = Math.min(backoff * 2, maxBackoff);
        continue;
      }
      if (signal.aborted) break;
      backoff = kBackoffStart;
      const lastSeq = String(page.last_seq);
      this.emit('page', { results: page.results.length, pending: page.pending, lastSeq });
      if (page.results.length > 0) {
        if (page.results.length >= this.opts.pageSize) {
          // more is waiting: fetch it while this page is handled
          const abort = new AbortController();
          const onAbort = () => abort.abort();
          signal.addEventListener('abort', onAbort, { once: true });
          const next = this.poll(abort.signal, lastSeq).finally(() => signal.removeEventListener('abort', onAbort));
          next.catch(() => undefined); // awaited (or dropped) later
          prefetched = { since: lastSeq, page: next, abort };
        }
        // A page is handled batch by batch, each checkpointed at its last row's seq (the
        // page's last_seq for the last batch, which also covers changes a selector left out).
        const { batchSize } = this.opts;
        for (let from = 0; from < page.results.length && !signal.aborted; from += batchSize) {
          const rows = page.results.length <= batchSize ? page.results : page.results.slice(from, from + batchSize);
          const seq = from + batchSize >= page.results.length ? lastSeq : String(rows[rows.length - 1]!.seq);
          // Handling and checkpointing are one unit that stop() waits for.
          const unit = this.handle(rows, seq);
          this.batch = unit.then(() => undefined, () => undefined);
          try {
            await unit;
          } catch (err) {
            // stopped while handling (the handler gave up on the batch): nothing to retry
            if (signal.aborted) break;
            // the batch is not acknowledged: it is delivered again from the same `since`
            logger.error('changes batch failed; retrying it', { db: this.db.config.db, error: describeError(err) });
            this.emit('retry', err, backoff);
            await sleep(backoff, signal).catch(() => undefined);
            backoff = Math.min(backoff * 2, maxBackoff);
            break; // the next round reads again from the last checkpoint
          }
          this.emit('batch', rows, seq);
        }
      } else {
        this.sinceSeq = lastSeq;
      }
    }
    prefetched?.abort.abort();
    this.emit('stop');
  }

  private async handle(results: ChangeRow[], lastSeq: string): Promise<void> {
    await this.opts.onBatch(results, lastSeq);
    this.sinceSeq = lastSeq;
    if (this.opts.checkpoint) {
      await this.opts.checkpoint(lastSeq).catch((err) =>
        this.opts.logger.warn('changes checkpoint failed', { db: this.db.config.db, error: describeError(err) }));
    }
  }

  private async poll(signal: AbortSignal, since: string): Promise<ChangesPage> {
    const { includeDocs, pageSize, timeout, selector, heartbeat } = this.opts;
    const qs: Record<string, unknown> = {
      feed: 'longpoll',
      since,
      timeout,
      limit: pageSize,
      include_docs: includeDocs,
    };
    if (selector) qs.filter = '_selector';
    if (heartbeat !== undefined) return this.watchedPoll(qs, heartbeat, signal);
    const res = await this.db.server.request({
      db: this.db.config.db,
      path: '_changes',
      method: selector ? 'POST' : 'GET',
      qs,
      ...(selector ? { body: { selector } } : {}),
      signal,
    } as nano.RequestOptions & { signal: AbortSignal });
    const page = res as { results?: ChangeRow[]; last_seq?: unknown };
    if (!page || !Array.isArray(page.results) || page.last_seq === undefined || page.last_seq === null) {
      throw new LivelyError('LC_STORE_UNAVAILABLE', '_changes answered without results and last_seq');
    }
    return { results: page.results, last_seq: String(page.last_seq) };
  }

  /**
   * One longpoll read as it streams in, so the store's heartbeat newlines are seen: silence
   * for longer than `2 × heartbeat + 1 s` aborts the request (a dropped connection). Sent
   * without Accept-Encoding: a compressed answer would hold the newlines back.
   */
  private async watchedPoll(qs: Record<string, unknown>, heartbeat: number, signal: AbortSignal): Promise<ChangesPage> {
    const { selector } = this.opts;
    const { base, authorization } = credentialsApart(this.db.config.url);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (authorization) headers.authorization = authorization;
    const search = new URLSearchParams(Object.entries({ ...qs, heartbeat }).map(([k, v]) => [k, String(v)]));
    const url = `${base}/${encodeURIComponent(this.db.config.db)}/_changes?${search}`;
    const stall = 2 * heartbeat + 1_000;
    const local = new AbortController();
    const onAbort = () => local.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    let silent = false;
    let timer = setTimeout(() => { silent = true; local.abort(); }, stall);
    const alive = () => { clearTimeout(timer); timer = setTimeout(() => { silent = true; local.abort(); }, stall); };
    try {
      const res = await request(url, {
        method: selector ? 'POST' : 'GET',
        headers: selector ? { ...headers, 'content-type': 'application/json' } : headers,
        ...(selector ? { body: JSON.stringify({ selector }) } : {}),
        signal: local.signal,
      });
      const chunks: Buffer[] = [];
      for await (const chunk of res.body) {
        alive();
        chunks.push(chunk as Buffer);
      }
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try { body = JSON.parse(text); } catch { body = undefined; }
      if (res.statusCode >= 400) {
        const reason = (body as { reason?: unknown } | undefined)?.reason;
        throw Object.assign(new Error(`${res.statusCode} ${typeof reason === 'string' ? reason : 'error'}`), { statusCode: res.statusCode });
      }
      const page = body as { results?: ChangeRow[]; last_seq?: unknown; pending?: unknown } | undefined;
      if (!page || !Array.isArray(page.results) || page.last_seq === undefined || page.last_seq === null) {
        throw new LivelyError('LC_STORE_UNAVAILABLE', '_changes answered without results and last_seq');
      }
      return { results: page.results, last_seq: String(page.last_seq), ...(typeof page.pending === 'number' ? { pending: page.pending } : {}) };
    } catch (err) {
      if (silent && !signal.aborted) throw new LivelyError('LC_STORE_UNAVAILABLE', `_changes of ${this.db.config.db} went silent for ${stall} ms: connection dropped`);
      throw err;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }
}

interface ChangesPage {
  results: ChangeRow[];
  last_seq: string;
  /** changes after last_seq, where the store says (Apache CouchDB does; the embedded store does not). */
  pending?: number;
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
