/**
 * Read-ahead of document metadata under the embedded store's `_changes`.
 *
 * PouchDB's LevelDB adapter reads a `_changes` page as a stream over its by-sequence store and,
 * for every change, looks the document's metadata up with one LevelDB `get`, starting the next
 * change only when that get has answered. Every get is a round trip through libuv's thread
 * pool: about 35 µs of CPU on the machine of docs/benchmarks.md, where one `getMany` costs
 * about 1 µs a key (`npm run bench:leveldown`). So when an iterator over a by-sequence store brings a batch of entries in
 * from LevelDB, the metadata of their documents is asked for at once with one `getMany`, and
 * the gets PouchDB makes next are answered from it.
 *
 * Only reads of text go through here (document metadata is JSON); a read of bytes (an
 * attachment's) is left as it was, since getMany answers in one encoding for all its keys.
 *
 * A get is held until the end of its turn; a database closed meanwhile answers it with leveldown's
 * own "Database is not open" (LevelDB is never read after its close, which would end the store).
 *
 * What was read ahead is never older than a get would have seen: every write to the database
 * (`put`, `del`, `batch`, `clear`) drops all of it, so a get after a write goes to LevelDB; a
 * key that was not found, or not read ahead, goes to LevelDB too. An iterator that ends drops
 * what it read ahead and nobody asked for. Only the `leveldown` the store's PouchDB uses is
 * changed, once, before any database opens; the memory store has no thread pool to save.
 */

/** The key prefixes of PouchDB's LevelDB adapter (sublevel-pouchdb: `ÿ<store>ÿ<key>`). */
const kDocStore = '\xffdocument-store\xff';
const kBySeq = Buffer.from('\xffby-sequence\xff', 'utf8');
const kBySeqText = '\xffby-sequence\xff';

type Callback = (err: Error | null | undefined, value?: unknown) => void;
type Value = string | Buffer | undefined;

interface LevelDownProto {
  _get(key: unknown, options: { asBuffer?: boolean }, callback: Callback): void;
  _getMany?(keys: string[], options: { asBuffer?: boolean; fillCache?: boolean }, callback: (err: Error | null, values: Value[]) => void): void;
  _iterator(options: unknown): IteratorLike;
  _put(...args: unknown[]): unknown;
  _del(...args: unknown[]): unknown;
  _batch(...args: unknown[]): unknown;
  _clear?(...args: unknown[]): unknown;
}

interface IteratorLike {
  db: object;
  cache: unknown[] | null | undefined;
  finished: boolean;
  _next(callback: (err?: Error | null, key?: unknown, value?: unknown) => void): unknown;
  _end(callback: Callback): unknown;
}

/** One getMany: its answer, once it came. */
class Batch {
  values: Value[] | undefined;
  failed = false;
  private waiting: Array<() => void> | undefined;

  settle(values: Value[] | undefined): void {
    if (values) this.values = values;
    else this.failed = true;
    const waiting = this.waiting;
    this.waiting = undefined;
    if (waiting) for (const fn of waiting) fn();
  }

  get settled(): boolean {
    return this.values !== undefined || this.failed;
  }

  /** Runs `fn` once the answer came (not `then`: a Batch must never pass for a promise). */
  whenSettled(fn: () => void): void {
    (this.waiting ??= []).push(fn);
  }
}

interface Entry { batch: Batch; index: number; gen: number }

/** One database's read-ahead: what was asked for, and how many writes it has seen. */
interface DbState { gen: number; entries: Map<string, Entry> }

const states = new WeakMap<object, DbState>();
/** The keys an iterator read ahead (dropped when it ends). */
const kAhead = Symbol('lively.readAhead');

const stats = { batches: 0, keys: 0, served: 0, coalesced: 0 };

/** How much the read-ahead did (`GET /_lively_store/stats`). */
export function readAheadStats(): { read_ahead_batches: number; read_ahead_keys: number; read_ahead_served: number; gets_together: number } {
  return { read_ahead_batches: stats.batches, read_ahead_keys: stats.keys, read_ahead_served: stats.served, gets_together: stats.coalesced };
}

/** The most entries one database keeps read ahead: more than this, and it starts over. */
const kMaxEntries = 10_000;

function stateOf(db: object): DbState {
  let st = states.get(db);
  if (!st) states.set(db, st = { gen: 0, entries: new Map() });
  return st;
}

function dropAll(db: object): void {
  const st = states.get(db);
  if (!st) return;
  st.gen++;
  if (st.entries.size > 0) st.entries.clear();
}

function isBySeqKey(key: unknown): boolean {
  if (typeof key === 'string') return key.startsWith(kBySeqText);
  return Buffer.isBuffer(key) && key.length > kBySeq.length && key.compare(kBySeq, 0, kBySeq.length, 0, kBySeq.length) === 0;
}

/**
 * The `_id` of a by-sequence entry (a document's JSON), or undefined. PouchDB writes `_id` and
 * `_rev` after the document's own fields, so the last `"_id":"` is taken without parsing the
 * document; it is a guess (a nested `_id` after it would win), which only decides what is read
 * ahead, never what a get answers: a key read ahead by mistake is simply not asked for.
 */
export function idOf(value: unknown): string | undefined {
  const text = typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString('utf8') : undefined;
  if (text === undefined) return undefined;
  const at = text.lastIndexOf('"_id":"');
  if (at !== -1) {
    const from = at + 7;
    const end = text.indexOf('"', from);
    if (end > from && text.lastIndexOf('\\', end) < from) return text.slice(from, end);
  }
  try {
    const id = (JSON.parse(text) as { _id?: unknown })._id;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Reads ahead the metadata of the documents of a by-sequence batch: `first` is the entry being
 * handed out now, `rest` what is left of the iterator's cache (leveldown keeps it as
 * [value, key, value, key, …], taken from the end).
 */
function readAhead(proto: LevelDownProto, it: IteratorLike, first: unknown, rest: unknown[]): void {
  const db = it.db;
  if ((db as { status?: string }).status !== 'open') return;
  const st = stateOf(db);
  if (st.entries.size > kMaxEntries) st.entries.clear();
  const keys: string[] = [];
  const add = (value: unknown) => {
    const id = idOf(value);
    if (id === undefined) return;
    const key = kDocStore + id;
    if (!st.entries.has(key)) keys.push(key);
  };
  add(first);
  for (let i = rest.length - 2; i >= 0; i -= 2) add(rest[i]);
  if (keys.length < 2) return;
  const batch = new Batch();
  const gen = st.gen;
  for (let i = 0; i < keys.length; i++) st.entries.set(keys[i]!, { batch, index: i, gen });
  const mine = ((it as unknown as Record<symbol, string[]>)[kAhead] ??= []);
  for (const k of keys) mine.push(k);
  stats.batches++;
  stats.keys += keys.length;
  proto._getMany!.call(db, keys, { asBuffer: false, fillCache: true }, (err, values) => batch.settle(err ? undefined : values));
}

let installed = false;

/**
 * Installs the read-ahead on `LevelDOWN` (the `leveldown` package the store's PouchDB opens its
 * databases with). Does nothing where that leveldown has no getMany.
 */
export function installReadAhead(LevelDOWN: { prototype: object }): boolean {
  const proto = LevelDOWN.prototype as LevelDownProto;
  if (installed || typeof proto._getMany !== 'function' || typeof proto._iterator !== 'function') return installed;
  installed = true;

  const get = proto._get;
  const getMany = proto._getMany;
  /** Gets asked for in one turn, by database: one getMany at the end of the turn. */
  const queued = new Map<object, Array<{ key: string; options: { asBuffer?: boolean }; callback: Callback }>>();
  // (only gets of text are queued: getMany answers them as text, which is what they asked for)
  const flush = () => {
    const all = [...queued];
    queued.clear();
    for (const [db, gets] of all) {
      // closed, or closing, since the gets were asked for: LevelDB must not be read any more
      if ((db as { status?: string }).status !== 'open') {
        for (const g of gets) process.nextTick(g.callback, new Error('Database is not open'));
        continue;
      }
      if (gets.length === 1) { const g = gets[0]!; get.call(db, g.key, g.options, g.callback); continue; }
      stats.coalesced += gets.length;
      getMany.call(db, gets.map((g) => g.key), { asBuffer: false, fillCache: true }, (err, values) => {
        for (let i = 0; i < gets.length; i++) {
          const g = gets[i]!;
          if (err) { g.callback(err); continue; }
          const value = values[i];
          if (value === undefined) g.callback(new Error('NotFound: '));
          else g.callback(null, value);
        }
      });
    }
  };
  const later = (db: object, key: string, options: { asBuffer?: boolean }, callback: Callback) => {
    let gets = queued.get(db);
    if (!gets) {
      if (queued.size === 0) process.nextTick(flush);
      queued.set(db, gets = []);
    }
    gets.push({ key, options, callback });
  };
  proto._get = function (this: object, key, options, callback) {
    const st = states.get(this);
    if (st !== undefined && typeof key === 'string' && !options.asBuffer) {
      const entry = st.entries.get(key);
      if (entry !== undefined) {
        st.entries.delete(key);
        if (entry.gen === st.gen) {
          const answer = () => {
            const value = entry.batch.values?.[entry.index];
            if (value === undefined) { later(this, key, options, callback); return; }
            stats.served++;
            callback(null, value);
          };
          if (entry.batch.settled) process.nextTick(answer);
          else entry.batch.whenSettled(answer);
          return;
        }
      }
    }
    // Text only: a value asked for as bytes (an attachment) is read as it was, one get of its own.
    if (typeof key === 'string' && !options.asBuffer) later(this, key, options, callback);
    else get.call(this, key, options, callback);
  };

  for (const name of ['_put', '_del', '_batch', '_clear'] as const) {
    const write = proto[name];
    if (typeof write !== 'function') continue;
    proto[name] = function (this: object, ...args: unknown[]) {
      dropAll(this);
      return (write as (...a: unknown[]) => unknown).apply(this, args);
    };
  }

  const iterator = proto._iterator;
  let iteratorProto: IteratorLike | undefined;
  proto._iterator = function (this: object, options: unknown) {
    const it = iterator.call(this, options);
    if (iteratorProto === undefined) patchIterator(proto, iteratorProto = Object.getPrototypeOf(it) as IteratorLike);
    return it;
  };
  return true;
}

function patchIterator(proto: LevelDownProto, itProto: IteratorLike): void {
  const next = itProto._next;
  itProto._next = function (this: IteratorLike, callback) {
    const cache = this.cache;
    if ((cache === null || cache === undefined || cache.length === 0) && !this.finished) {
      // the cache is refilled from LevelDB: the entries it brings are known when the first is handed out
      return next.call(this, (err, key, value) => {
        if (!err && key !== undefined && this.cache !== cache && isBySeqKey(key)) {
          try { readAhead(proto, this, value, this.cache ?? []); } catch { /* reading ahead is only ever a shortcut */ }
        }
        callback(err, key, value);
      });
    }
    return next.call(this, callback);
  };
  const end = itProto._end;
  itProto._end = function (this: IteratorLike, callback) {
    const mine = (this as unknown as Record<symbol, string[] | undefined>)[kAhead];
    if (mine) {
      (this as unknown as Record<symbol, undefined>)[kAhead] = undefined;
      const st = states.get(this.db);
      if (st) for (const k of mine) st.entries.delete(k);
    }
    return end.call(this, callback);
  };
}
