/**
 * Entries held briefly under numeric ids the table hands out, in reusable array slots: what the
 * dispatch path uses instead of a Map for messages in flight. A Map with one add and one delete
 * per message is rebuilt every few dozen, and its replaced tables chain each other into the old
 * generation, so every message outlived the young generation (docs/benchmarks.md). An id is its
 * slot plus a multiple of the span counting reuses, so a deleted id never finds a newer entry.
 */
const kSpan = 2 ** 22;
const kRounds = 2 ** 30;

export class SlotTable<T> {
  private readonly values: Array<T | undefined> = [];
  private readonly ids: number[] = [];
  private readonly free: number[] = [];
  private round = 0;
  size = 0;

  /** Slots in use or free: the most entries ever held at once. */
  get slots(): number { return this.values.length; }

  /** Holds `value`; returns its id. */
  add(value: T): number {
    let slot = this.free.pop();
    if (slot === undefined) {
      slot = this.values.length;
      if (slot >= kSpan) throw new RangeError(`more than ${kSpan} entries held at once`);
      this.values.push(undefined);
      this.ids.push(-1);
    }
    this.round = (this.round + 1) % kRounds;
    const id = this.round * kSpan + slot;
    this.values[slot] = value;
    this.ids[slot] = id;
    this.size++;
    return id;
  }

  get(id: number): T | undefined {
    const slot = id % kSpan;
    return this.ids[slot] === id ? this.values[slot] : undefined;
  }

  /** False when `id` is not held (never was, or was deleted). */
  delete(id: number): boolean {
    const slot = id % kSpan;
    if (this.ids[slot] !== id) return false;
    this.values[slot] = undefined;
    this.ids[slot] = -1;
    this.free.push(slot);
    this.size--;
    return true;
  }

  /** What is held, in no particular order. */
  *entries(): IterableIterator<T> {
    for (let i = 0; i < this.values.length; i++) if (this.ids[i] !== -1) yield this.values[i]!;
  }

  clear(): void {
    for (let i = 0; i < this.values.length; i++) {
      if (this.ids[i] === -1) continue;
      this.values[i] = undefined;
      this.ids[i] = -1;
      this.free.push(i);
    }
    this.size = 0;
  }
}
