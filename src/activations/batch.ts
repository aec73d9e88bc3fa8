/**
 * The stored form of activation records: one document per batch, columnar (one array per
 * field, indexed by record), and what reads need from it — the batch's place in time from its
 * id alone, per-record filters on the columns, and records expanded back from the columns.
 *
 * A batch id is `<ISO time of its earliest start>-<span ms>-<records>-<writer><seq>` (numbers
 * in base 36). Every record of a batch started on one UTC day and within kBatchSpanMs of the
 * others, so a listing of ids (no documents, no view) says which batches can hold a given
 * start time, and how many records a day database holds.
 */
import type { ActivationStatus, TriggerKind, WorkerOutcome } from '../shared/message.ts';
import type { ActivationInput, ActivationRecord } from './record.ts';
import { packInts, readBase36, unpackInts } from './int-column.ts';

/** The widest spread of start times within one batch. */
export const kBatchSpanMs = 5_000;
export { kDayMs } from '../store/days.ts';

export interface BatchDoc {
  _id: string;
  type: 'activations';
  count: number;
  activation: string[];
  /** the activation's events, comma-separated. */
  events: string[];
  trigger: TriggerKind[];
  path: Array<string | null>;
  method: Array<string | null>;
  /** ms since the epoch. */
  started: number[];
  durationMs: number[];
  /** per activation: "worker:status" for each worker ("worker:status*attempts" when retried), comma-separated. */
  workers: string[];
  /** the activation whose worker emitted the event, null for a root. */
  parent?: Array<string | null>;
  /** activation → its workers' full outcomes (results, logs, errors). */
  details: Record<string, WorkerOutcome[]>;
  /** activation → what fired it (kept with the details): enough to fire it again. */
  inputs?: Record<string, ActivationInput>;
  /** activation → the fields few records have. */
  marks?: Record<string, { rerunOf?: string; dead?: true; lateOf?: string }>;
}

/**
 * How a batch is stored (v3): the columns that repeat (events, trigger, path, method, workers,
 * parent) as indexes into one string table, this runtime's activation ids
 * (`<boot>-<start in base 36>-<n>`) as their `n` alone, start times as offsets from the
 * batch's first, durations in hundredths of a ms, and every column packed into one string
 * (./int-column.ts: base 36, runs of equal values once, counters and start times as
 * differences). At thousands of records a second the document is about a tenth of its plain
 * size and holds a dozen strings where arrays held hundreds of thousands of numbers, which the
 * store would parse, copy and hash one by one: records cost the store a tenth of what they did.
 * `decodeBatch` gives back the plain form every reader works on, from this form, from v2
 * (the same columns as JSON arrays, written before) and from a plain document (before that).
 */
export interface StoredBatch {
  _id: string;
  type: 'activations';
  v: 3;
  count: number;
  /** the boot part of the writing runtime's activation ids. */
  boot: string;
  strings: string[];
  /** the number `n` of each id `<boot>-<start in base 36>-<n in base 36>`, packed as differences. */
  activation: string;
  /** record index → its whole id, for ids that do not follow that pattern. */
  odd?: Record<string, string>;
  /** string-table indexes, packed; -1: none. */
  events: string;
  trigger: string;
  path: string;
  method: string;
  workers: string;
  parent: string;
  t0: number;
  /** ms after `t0`, packed as differences. */
  started: string;
  /** hundredths of a ms, packed. */
  duration: string;
  details: BatchDoc['details'];
  inputs?: BatchDoc['inputs'];
  marks?: BatchDoc['marks'];
}

/** The stored form written before v3: the same columns as JSON arrays. Still read. */
interface StoredBatchV2 {
  _id: string;
  type: 'activations';
  v: 2;
  count: number;
  boot: string;
  strings: string[];
  /** the id's number `n`, or the whole id when it does not follow the pattern. */
  activation: Array<number | string>;
  events: number[];
  trigger: number[];
  path: number[];
  method: number[];
  t0: number;
  started: number[];
  durationMs: number[];
  workers: number[];
  parent: number[];
  details: BatchDoc['details'];
  inputs?: BatchDoc['inputs'];
  marks?: BatchDoc['marks'];
}

/**
 * A batch being filled, kept in its stored form as records come (see StoredBatch): the repeated
 * columns as indexes into the batch's string table, this runtime's activation ids as their
 * counter, numbers in typed arrays: outside the JavaScript heap, with each distinct string held
 * once, a record adds nearly nothing a young-generation collection must copy (plain arrays were
 * most of what survived them on a busy runtime: docs/benchmarks.md).
 */
export class BatchBuilder {
  count = 0;
  details: BatchDoc['details'] = {};
  inputs: NonNullable<BatchDoc['inputs']> = {};
  marks: NonNullable<BatchDoc['marks']> = {};
  /** the boot part of the first record's id: records whose ids share it are stored as their counter. */
  private boot: string | undefined;
  private readonly strings: string[] = [];
  private readonly index = new Map<string, number>();
  /** ids that are not `<boot>-<start>-<counter>`, by record; their counter column holds -1. */
  private readonly oddIds = new Map<number, string>();
  private capacity = 256;
  private activation = new Float64Array(this.capacity);
  private started = new Float64Array(this.capacity);
  /** hundredths of a ms. */
  private duration = new Float64Array(this.capacity);
  private events = new Int32Array(this.capacity);
  private trigger = new Int32Array(this.capacity);
  private path = new Int32Array(this.capacity);
  private method = new Int32Array(this.capacity);
  private workers = new Int32Array(this.capacity);
  private parent = new Int32Array(this.capacity);
  // Records of one millisecond share their id's head, built once for them.
  private headAt = NaN;
  private head = '';

  add(activation: string, events: string | null, trigger: string | null, path: string | null, method: string | null,
    started: number, durationMs: number, workers: string | null, parent: string | null): void {
    if (this.count === this.capacity) this.grow();
    const i = this.count++;
    if (this.boot === undefined) this.boot = activation.includes('-') ? activation.slice(0, activation.indexOf('-')) : '';
    if (started !== this.headAt) { this.headAt = started; this.head = `${this.boot}-${started.toString(36)}-`; }
    const k = this.boot ? idNumber(activation, this.head) : -1;
    if (k < 0) {
      this.oddIds.set(i, activation);
      // the counter before it again: a difference of 0, which keeps the packed column's runs
      this.activation[i] = i > 0 ? this.activation[i - 1]! : 0;
    } else {
      this.activation[i] = k;
    }
    this.started[i] = Math.round(started);
    // kept to a hundredth of a ms (the recorder rounds to that already); a duration that is not a number is 0
    this.duration[i] = Number.isFinite(durationMs) ? Math.round(durationMs * 100) : 0;
    this.events[i] = this.ref(events);
    this.trigger[i] = this.ref(trigger);
    this.path[i] = this.ref(path);
    this.method[i] = this.ref(method);
    this.workers[i] = this.ref(workers);
    this.parent[i] = this.ref(parent);
  }

  /** The document to store, named `id`. */
  stored(id: string): StoredBatch {
    const n = this.count;
    let t0 = n > 0 ? this.started[0]! : 0;
    for (let i = 1; i < n; i++) if (this.started[i]! < t0) t0 = this.started[i]!;
    const offsets = new Float64Array(n);
    for (let i = 0; i < n; i++) offsets[i] = this.started[i]! - t0;
    const out: StoredBatch = {
      _id: id, type: 'activations', v: 3, count: n, boot: this.boot ?? '', strings: this.strings.slice(),
      activation: packInts(this.activation, n, true),
      events: packInts(this.events, n, false), trigger: packInts(this.trigger, n, false), path: packInts(this.path, n, false),
      method: packInts(this.method, n, false), workers: packInts(this.workers, n, false), parent: packInts(this.parent, n, false),
      t0, started: packInts(offsets, n, true), duration: packInts(this.duration, n, false),
      details: this.details,
    };
    if (this.oddIds.size > 0) out.odd = Object.fromEntries(this.oddIds);
    if (Object.keys(this.inputs).length > 0) out.inputs = this.inputs;
    if (Object.keys(this.marks).length > 0) out.marks = this.marks;
    return out;
  }

  private ref(s: string | null): number {
    if (s === null || s === undefined) return -1;
    let i = this.index.get(s);
    if (i === undefined) { i = this.strings.length; this.strings.push(s); this.index.set(s, i); }
    return i;
  }

  private grow(): void {
    this.capacity *= 2;
    const grown = <T extends Float64Array | Int32Array>(a: T): T => {
      const b = new (a.constructor as new (n: number) => T)(this.capacity);
      b.set(a);
      return b;
    };
    this.activation = grown(this.activation);
    this.started = grown(this.started);
    this.duration = grown(this.duration);
    this.events = grown(this.events);
    this.trigger = grown(this.trigger);
    this.path = grown(this.path);
    this.method = grown(this.method);
    this.workers = grown(this.workers);
    this.parent = grown(this.parent);
  }
}

/** The stored form of a plain batch document. */
export function encodeBatch(doc: BatchDoc): StoredBatch {
  const b = new BatchBuilder();
  for (let i = 0; i < doc.count; i++) {
    b.add(doc.activation[i]!, doc.events[i] ?? null, doc.trigger[i] ?? null, doc.path[i] ?? null, doc.method[i] ?? null,
      doc.started[i]!, doc.durationMs[i]!, doc.workers[i] ?? null, doc.parent?.[i] ?? null);
  }
  b.details = doc.details;
  if (doc.inputs) b.inputs = doc.inputs;
  if (doc.marks) b.marks = doc.marks;
  return b.stored(doc._id);
}

/**
 * The `n` of an id `<head><n in base 36>`: 1 to 10 digits 0-9a-z without a leading zero
 * (so that writing `n` back in base 36 gives the id again); -1 for any other id.
 */
function idNumber(id: string, head: string): number {
  const digits = id.length - head.length;
  if (digits < 1 || digits > 10 || !id.startsWith(head)) return -1;
  if (digits > 1 && id.charCodeAt(head.length) === 0x30) return -1;
  // at most 36^10 - 1, a safe integer; NaN (not base 36) or negative (a '-') is no counter
  const k = readBase36(id, head.length, id.length);
  return k >= 0 ? k : -1;
}

/** The plain form of a stored batch, in any of its forms. */
export function decodeBatch(doc: BatchDoc | StoredBatch | StoredBatchV2): BatchDoc {
  const v = (doc as { v?: unknown }).v;
  if (v === 3) return decodeV3(doc as StoredBatch);
  if (v === 2) return decodeV2(doc as StoredBatchV2);
  return doc as BatchDoc;
}

function decodeV3(d: StoredBatch): BatchDoc {
  const n = d.count;
  const strings = Array.isArray(d.strings) ? d.strings : [];
  const column = (packed: string): Array<string | null> => unpackInts(packed, n, false).map((i) => (i >= 0 ? strings[i] ?? null : null));
  const started = unpackInts(d.started, n, true).map((x) => x + d.t0);
  const counters = unpackInts(d.activation, n, true);
  const odd = d.odd ?? {};
  return {
    _id: d._id, type: 'activations', count: n,
    activation: counters.map((k, i) => odd[i] ?? `${d.boot}-${started[i]!.toString(36)}-${k.toString(36)}`),
    events: column(d.events).map((e) => e ?? ''),
    trigger: column(d.trigger) as TriggerKind[],
    path: column(d.path),
    method: column(d.method),
    started,
    durationMs: unpackInts(d.duration, n, false).map((x) => x / 100),
    workers: column(d.workers).map((w) => w ?? ''),
    parent: column(d.parent),
    details: d.details,
    ...(d.inputs ? { inputs: d.inputs } : {}),
    ...(d.marks ? { marks: d.marks } : {}),
  };
}

function decodeV2(d: StoredBatchV2): BatchDoc {
  const str = (i: number): string | null => (i < 0 ? null : d.strings[i]!);
  const started = d.started.map((x) => x + d.t0);
  return {
    _id: d._id, type: 'activations', count: d.count,
    activation: d.activation.map((a, i) => (typeof a === 'string' ? a : `${d.boot}-${started[i]!.toString(36)}-${a.toString(36)}`)),
    events: d.events.map((i) => str(i) ?? ''),
    trigger: d.trigger.map((i) => str(i) as TriggerKind),
    path: d.path.map(str),
    method: d.method.map(str),
    started,
    durationMs: d.durationMs,
    workers: d.workers.map((i) => str(i) ?? ''),
    parent: d.parent.map(str),
    details: d.details,
    ...(d.inputs ? { inputs: d.inputs } : {}),
    ...(d.marks ? { marks: d.marks } : {}),
  };
}

export interface BatchRef {
  id: string;
  /** earliest and latest start in the batch. */
  lo: number;
  hi: number;
  count: number;
}

export function batchId(lo: number, hi: number, count: number, writer: string): string {
  return `${new Date(lo).toISOString()}-${(hi - lo).toString(36)}-${count.toString(36)}-${writer}`;
}

/** The time prefix of batch ids whose earliest start is `t` (ids of later batches sort after it). */
export function batchIdPrefix(t: number): string {
  return new Date(t).toISOString();
}

const kIsoLength = 24; // 2026-01-01T00:00:00.000Z

export function parseBatchId(id: string): BatchRef | undefined {
  if (id.length < kIsoLength + 6 || id.charCodeAt(kIsoLength) !== 0x2d) return undefined;
  const lo = Date.parse(id.slice(0, kIsoLength));
  const rest = id.slice(kIsoLength + 1).split('-');
  const span = parseInt(rest[0] ?? '', 36);
  const count = parseInt(rest[1] ?? '', 36);
  if (!Number.isFinite(lo) || !Number.isFinite(span) || !Number.isFinite(count)) return undefined;
  return { id, lo, hi: lo + span, count };
}

/** What a listing can ask of a record; every given field must match. */
export interface RecordFilter {
  event?: string;
  worker?: string;
  status?: ActivationStatus | 'dead';
  /** started at or after (ms). */
  since?: number;
}

function listHas(list: string, item: string): boolean {
  if (list === item) return true;
  return list.split(',').includes(item);
}

/** Whether record `i` of `doc` passes the filter, read from the columns without expanding it. */
export function matchesAt(doc: BatchDoc, i: number, f: RecordFilter): boolean {
  if (f.since !== undefined && doc.started[i]! < f.since) return false;
  if (f.event !== undefined && !listHas(doc.events[i] ?? '', f.event)) return false;
  if (f.status === 'dead') {
    if (doc.marks?.[doc.activation[i]!]?.dead !== true) return false;
  }
  if (f.worker !== undefined || (f.status !== undefined && f.status !== 'dead')) {
    const summary = doc.workers[i] ?? '';
    let worker = f.worker === undefined;
    let status = f.status === undefined || f.status === 'dead';
    for (const ws of summary ? summary.split(',') : []) {
      const w = parseWorkerSummary(ws);
      if (w.worker === f.worker) worker = true;
      if (w.status === f.status) status = true;
    }
    if (!worker || !status) return false;
  }
  return true;
}

function parseWorkerSummary(ws: string): { worker: string; status: ActivationStatus; attempts?: number } {
  const at = ws.lastIndexOf(':');
  const tail = ws.slice(at + 1);
  const star = tail.indexOf('*');
  const worker = ws.slice(0, at);
  if (star === -1) return { worker, status: tail as ActivationStatus };
  return { worker, status: tail.slice(0, star) as ActivationStatus, attempts: Number(tail.slice(star + 1)) };
}

/** Record `i` of a stored batch; outcomes without details carry worker, status (and attempts) only. */
export function expandAt(doc: BatchDoc, i: number): ActivationRecord {
  const activation = doc.activation[i]!;
  const path = doc.path[i];
  const method = doc.method[i];
  const input = doc.inputs?.[activation];
  const parent = doc.parent?.[i];
  const marks = doc.marks?.[activation];
  return {
    activation,
    events: doc.events[i] ? doc.events[i]!.split(',') : [],
    trigger: doc.trigger[i]!,
    ...(path !== null && path !== undefined ? { path } : {}),
    ...(method !== null && method !== undefined ? { method } : {}),
    started: doc.started[i]!,
    durationMs: doc.durationMs[i]!,
    workers: doc.details[activation] ?? (doc.workers[i] ? doc.workers[i]!.split(',') : []).map((ws): WorkerOutcome => {
      const { worker, status, attempts } = parseWorkerSummary(ws);
      return { worker, status, logs: [], durationMs: 0, ...(attempts !== undefined ? { attempts } : {}) };
    }),
    ...(input !== undefined ? { input } : {}),
    ...(parent ? { parent } : {}),
    ...(marks?.rerunOf !== undefined ? { rerunOf: marks.rerunOf } : {}),
    ...(marks?.dead ? { dead: true } : {}),
    ...(marks?.lateOf !== undefined ? { lateOf: marks.lateOf } : {}),
  };
}

/** The records of one stored batch (in either form), in the order they were recorded. */
export function expandBatch(stored: BatchDoc | StoredBatch | StoredBatchV2): ActivationRecord[] {
  const doc = decodeBatch(stored);
  return doc.activation.map((_, i) => expandAt(doc, i));
}
