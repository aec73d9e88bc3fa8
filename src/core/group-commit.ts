/**
 * Batches concurrent writes: the first item starts a write at once; items added while it is
 * in flight wait and go together in the next one. The durable journal (./durable.ts) commits
 * its accepts this way, so durability costs a share of one write, not a write per request.
 */
export class GroupCommit<T, R> {
  private queue: Array<{ item: T; size: number; resolve: (r: R) => void; reject: (e: unknown) => void }> = [];
  private writing = false;
  /** writes made, for specs and status. */
  writes = 0;

  /**
   * A write takes at most `maxBatch` items, and items of at most `maxSize` in all (by the sizes
   * given to add(); at least one item, whatever its size).
   */
  constructor(private readonly write: (items: T[]) => Promise<R[]>, private readonly maxBatch = 2_000, private readonly maxSize = Infinity) {}

  /** a write is in flight (items added now go in the next one). */
  get busy(): boolean {
    return this.writing;
  }

  add(item: T, size = 0): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, size, resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  /** How many of the queue's first items one write takes. */
  private takes(): number {
    let n = 0;
    let size = 0;
    while (n < this.queue.length && n < this.maxBatch && (n === 0 || size + this.queue[n]!.size <= this.maxSize)) size += this.queue[n++]!.size;
    return n;
  }

  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.takes());
        this.writes++;
        try {
          const results = await this.write(batch.map((b) => b.item));
          batch.forEach((b, i) => b.resolve(results[i]!));
        } catch (err) {
          for (const b of batch) b.reject(err);
        }
      }
    } finally {
      this.writing = false;
    }
  }
}
