/**
 * A column of whole numbers as one string: base-36 values separated by commas, a run of equal
 * values as `value*count`, and, for columns that mostly grow (activation counters, start
 * times), each value as its difference from the one before. One string where a JSON array
 * would hold thousands of numbers: the store parses, copies and hashes one value instead of
 * thousands (docs/benchmarks.md, "Activation batches as packed columns").
 *
 *   [5, 5, 5, 7]          →  "5*3,7"
 *   [100, 101, 102, 110]  →  "2s,1*2,8"   (delta)
 */

/** `values[0..n)`, whole and safe integers, packed. */
export function packInts(values: ArrayLike<number>, n: number, delta: boolean): string {
  let out = '';
  let prev = 0;
  for (let i = 0; i < n;) {
    const first = values[i]!;
    const v = delta ? first - prev : first;
    let j = i + 1;
    if (delta) {
      let last = first;
      while (j < n && values[j]! - last === v) { last = values[j]!; j++; }
      prev = last;
    } else {
      while (j < n && values[j] === v) j++;
    }
    const token = j - i > 1 ? `${v.toString(36)}*${(j - i).toString(36)}` : v.toString(36);
    out = i === 0 ? token : `${out},${token}`;
    i = j;
  }
  return out;
}

/**
 * The `n` values of a packed column. Never longer than `n`, whatever the text says; a text that
 * is not a packed column (a document edited by hand) gives NaN where it cannot be read, and
 * NaN for values it does not have.
 */
export function unpackInts(text: unknown, n: number, delta: boolean): number[] {
  const out = new Array<number>(n).fill(NaN);
  if (typeof text !== 'string' || text === '') return out;
  let k = 0;
  let prev = 0;
  for (let at = 0; at < text.length && k < n;) {
    let end = text.indexOf(',', at);
    if (end === -1) end = text.length;
    const star = text.indexOf('*', at);
    const hasRun = star !== -1 && star < end;
    const v = readBase36(text, at, hasRun ? star : end);
    const times = hasRun ? readBase36(text, star + 1, end) : 1;
    if (!(times >= 1)) { k++; at = end + 1; continue; }
    for (let r = 0; r < times && k < n; r++) {
      prev = delta ? prev + v : v;
      out[k++] = prev;
    }
    at = end + 1;
  }
  return out;
}

/** The base-36 integer (optionally negative) in text[from, to); NaN when it is not one. */
export function readBase36(text: string, from: number, to: number): number {
  if (from >= to) return NaN;
  const negative = text.charCodeAt(from) === 0x2d;
  let k = 0;
  for (let i = negative ? from + 1 : from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) k = k * 36 + (c - 0x30);
    else if (c >= 0x61 && c <= 0x7a) k = k * 36 + (c - 0x57);
    else return NaN;
  }
  if (negative && to === from + 1) return NaN;
  return negative ? -k : k;
}
