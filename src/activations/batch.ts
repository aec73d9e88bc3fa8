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
import type { ActivationInput, ActivationRecord } from './log.ts';

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
  marks?: Record<string, { rerunOf?: string; dead?: true }>;
}

/**
 * How a batch is stored: the columns that repeat (events, trigger, path, method, workers,
 * parent) as indexes into one string table, start times as offsets from the batch's first,
 * and activation ids that follow this runtime's pattern (`<boot>-<start in base 36>-<n>`)
 * as their `n` alone. At thousands of records a second this makes the document about a third
 * of its plain size, which the store parses and keeps: less of the machine spent on logging.
 * `decodeBatch` gives back the plain form every reader works on; a plain document (written
 * before this form existed) passes through unchanged.
 */
export interface StoredBatch {
  _id: string;
  type: 'activations';
  v: 2;
  count: number;
  /** the boot part of the writing runtime's activation ids. */
  boot: string;
  strings: string[];
  /** the number `n` of an id `<boot>-<start in base 36>-<n in base 36>`, or the whole id (a string) when it does not follow the pattern. */
  activation: Array<number | string>;
  events: number[];
  trigger: number[];
  path: number[];
  method: number[];
  /** ms after `t0`. */
  t0: number;
  started: number[];
  durationMs: number[];
  workers: number[];
  /** -1: none. */
  parent: number[];
  details: BatchDoc['details'];
  inputs?: BatchDoc['inputs'];
  marks?: BatchDoc['marks'];
}

export function encodeBatch(doc: BatchDoc): StoredBatch {
  // The boot part of the first id: a runtime's own records all share it.
  const first = doc.activation[0] ?? '';
  const boot = first.includes('-') ? first.slice(0, first.indexOf('-')) : '';
  const strings: string[] = [];
  const index = new Map<string, number>();
  const ref = (s: string | null | undefined): number => {
    if (s === null || s === undefined) return -1;
    let i = index.get(s);
    if (i === undefined) { i = strings.length; strings.push(s); index.set(s, i); }
    return i;
  };
  const n = doc.count;
  let t0 = n > 0 ? doc.started[0]! : 0;
  for (let i = 1; i < n; i++) if (doc.started[i]! < t0) t0 = doc.started[i]!;
  const activation = new Array<number | string>(n);
  const started = new Array<number>(n);
  // Speed: records of one millisecond share their id's head, built once for them.
  let headAt = NaN;
  let head = '';
  for (let i = 0; i < n; i++) {
    const id = doc.activation[i]!;
    const s = doc.started[i]!;
    if (s !== headAt) { headAt = s; head = `${boot}-${s.toString(36)}-`; }
    const k = boot ? idNumber(id, head) : -1;
    activation[i] = k >= 0 ? k : id;
    started[i] = s - t0;
  }
  const refs = (col: ReadonlyArray<string | null>) => col.map(ref);
  const out: StoredBatch = {
    _id: doc._id, type: 'activations', v: 2, count: n, boot, strings: [],
    activation, events: refs(doc.events), trigger: refs(doc.trigger), path: refs(doc.path), method: refs(doc.method),
    t0, started, durationMs: doc.durationMs, workers: refs(doc.workers),
    parent: doc.parent ? refs(doc.parent) : new Array<number>(n).fill(-1),
    details: doc.details,
  };
  out.strings = strings;
  if (doc.inputs && Object.keys(doc.inputs).length > 0) out.inputs = doc.inputs;
  if (doc.marks && Object.keys(doc.marks).length > 0) out.marks = doc.marks;
  return out;
}

/**
 * The `n` of an id `<head><n in base 36>`: 1 to 10 digits 0-9a-z without a leading zero
 * (so that writing `n` back in base 36 gives the id again); -1 for any other id.
 */
function idNumber(id: string, head: string): number {
  const digits = id.length - head.length;
  if (digits < 1 || digits > 10 || !id.startsWith(head)) return -1;
  if (digits > 1 && id.charCodeAt(head.length) === 0x30) return -1;
  let k = 0;
  for (let i = head.length; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) k = k * 36 + (c - 0x30);
    else if (c >= 0x61 && c <= 0x7a) k = k * 36 + (c - 0x57);
    else return -1;
  }
  return k; // at most 36^10 - 1, a safe integer
}

/** The plain form of a stored batch, in either form. */
export function decodeBatch(doc: BatchDoc | StoredBatch): BatchDoc {
  if ((doc as StoredBatch).v !== 2) return doc as BatchDoc;
  const d = doc as StoredBatch;
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
  };
}

/** The records of one stored batch (in either form), in the order they were recorded. */
export function expandBatch(stored: BatchDoc | StoredBatch): ActivationRecord[] {
  const doc = decodeBatch(stored);
  return doc.activation.map((_, i) => expandAt(doc, i));
}
