/**
 * Every write of the embedded store on disk reaches the disk before it is answered, as Apache
 * CouchDB's commits do.
 *
 * LevelDB appends each write batch to its log and, unless the write asks for `sync`, leaves it
 * in the operating system's cache; leveldown never asks, and PouchDB gives it no way to. An
 * answered write then survives a crash of the store's process but not a power loss or a crash
 * of the machine, and the durable journal's 202 (src/core/durable.ts) would promise less here
 * than on CouchDB. With this installed every write (put, del, batch, chained batch) carries
 * `sync: true`, so LevelDB syncs its log (fdatasync) before the write's callback: one sync per
 * PouchDB write, however many documents it holds, and LevelDB folds writers waiting at once
 * into one sync. Only the `leveldown` the store's PouchDB uses is changed, once, before any
 * database opens; `LIVELY_STORE_SYNC=0` leaves it as it was, and the memory store has no disk.
 */

type Callback = (err?: Error | null) => void;

interface WriteProto {
  _put(key: unknown, value: unknown, options: object | undefined, callback: Callback): unknown;
  _del(key: unknown, options: object | undefined, callback: Callback): unknown;
  _batch(operations: unknown[], options: object | undefined, callback: Callback): unknown;
  _chainedBatch(): { _write(options: object | undefined, callback: Callback): unknown };
}

/** Marks a prototype whose writes are synced already. */
const kSynced = Symbol('lively.syncWrites');

/** The caller's options with `sync` set, as a copy: an options object may be shared between calls. */
const synced = (options: object | undefined): object => ({ ...options, sync: true });

/** Installs synced writes on `LevelDOWN` (idempotent); false if it is not a leveldown this knows. */
export function installSyncWrites(LevelDOWN: { prototype: object }): boolean {
  const proto = LevelDOWN.prototype as WriteProto & { [kSynced]?: true };
  if (proto[kSynced]) return true;
  if (typeof proto._put !== 'function' || typeof proto._del !== 'function' || typeof proto._batch !== 'function' || typeof proto._chainedBatch !== 'function') return false;
  proto[kSynced] = true;
  const { _put: put, _del: del, _batch: batch, _chainedBatch: chainedBatch } = proto;
  proto._put = function (this: WriteProto, key, value, options, callback) { return put.call(this, key, value, synced(options), callback); };
  proto._del = function (this: WriteProto, key, options, callback) { return del.call(this, key, synced(options), callback); };
  proto._batch = function (this: WriteProto, operations, options, callback) { return batch.call(this, operations, synced(options), callback); };
  proto._chainedBatch = function (this: WriteProto) {
    const chained = chainedBatch.call(this);
    const write = chained._write;
    chained._write = function (this: typeof chained, options, callback) { return write.call(this, synced(options), callback); };
    return chained;
  };
  return true;
}
