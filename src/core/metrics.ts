/**
 * `/_lively/metrics`: the runtime's figures in the Prometheus text exposition format (0.0.4).
 *
 * Per-event and per-worker figures come from the stream of activation records
 * (ActivationMetrics is one of the sinks Firing's records go to), so the trigger path does
 * no extra work: each record costs a map lookup per event and per worker and a few
 * increments; label text is built only when metrics are scraped. The number of distinct
 * events and workers counted is bounded (`maxSeries`); names beyond it are counted under
 * `_other`, so a flood of event ids cannot grow memory or a scrape without limit.
 */
import type { ActivationLog } from '../activations/recorder.ts';
import type { ActivationRecord } from '../activations/record.ts';
import type { ActivationStatus } from '../shared/message.ts';
import type { DispatcherStats } from '../workers/dispatcher.ts';
import type { ActivationSink } from './activation-sink.ts';
import type { EventCatalog } from './event-catalog.ts';
import type { Firing } from './firing.ts';

/** Upper bounds of the worker duration buckets, in seconds (`+Inf` follows). */
export const kDurationBuckets: readonly number[] = Object.freeze([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]);
const kBucketsMs = kDurationBuckets.map((s) => s * 1000);
const kOther = '_other';

type Counts = Record<ActivationStatus, number>;

interface WorkerSeries extends Counts {
  /** per bucket, not cumulative; the last slot is above the largest bound. */
  buckets: Float64Array;
  sumSeconds: number;
}

/** A feed's view of itself, as the changes triggers report it. */
export interface FeedStat {
  event: string;
  db: string;
  state: string;
  /** changes in the database not yet handled by this trigger. */
  lag?: number;
}

export class ActivationMetrics implements ActivationSink {
  private readonly events = new Map<string, Counts>();
  private readonly workers = new Map<string, WorkerSeries>();

  constructor(private readonly maxSeries = 2_000) {}

  record(rec: ActivationRecord): void {
    let status: ActivationStatus = 'ok';
    const ws = rec.workers;
    for (let i = 0; i < ws.length; i++) {
      const w = ws[i]!;
      if (w.status === 'error') status = 'error';
      else if (w.status === 'timeout' && status === 'ok') status = 'timeout';
      // A chain stopped at its limit carries an outcome with no worker.
      if (w.worker !== '') this.observe(w.worker, w.status, w.durationMs);
    }
    const evs = rec.events;
    if (evs.length === 0) this.eventCounts('')[status]++;
    for (let i = 0; i < evs.length; i++) this.eventCounts(evs[i]!)[status]++;
  }

  private eventCounts(name: string): Counts {
    let c = this.events.get(name);
    if (c === undefined) {
      c = this.events.size >= this.maxSeries ? this.events.get(kOther) : undefined;
      if (c === undefined) {
        c = { ok: 0, error: 0, timeout: 0 };
        this.events.set(this.events.size >= this.maxSeries ? kOther : name, c);
      }
    }
    return c;
  }

  private observe(name: string, status: ActivationStatus, durationMs: number): void {
    let s = this.workers.get(name);
    if (s === undefined) {
      s = this.workers.size >= this.maxSeries ? this.workers.get(kOther) : undefined;
      if (s === undefined) {
        s = { ok: 0, error: 0, timeout: 0, buckets: new Float64Array(kBucketsMs.length + 1), sumSeconds: 0 };
        this.workers.set(this.workers.size >= this.maxSeries ? kOther : name, s);
      }
    }
    s[status]++;
    const ms = durationMs > 0 ? durationMs : 0;
    let b = 0;
    while (b < kBucketsMs.length && ms > kBucketsMs[b]!) b++;
    s.buckets[b]!++;
    s.sumSeconds += ms / 1000;
  }

  /** Activations per event and overall status (the worst of its workers'). */
  eventStats(): ReadonlyMap<string, Readonly<Counts>> { return this.events; }
  workerStats(): ReadonlyMap<string, Readonly<WorkerSeries>> { return this.workers; }
}

export interface MetricSources {
  firing: Firing;
  catalog: EventCatalog;
  log: Pick<ActivationLog, 'written' | 'dropped'>;
  dispatchers: DispatcherStats[];
  activations: ActivationMetrics;
  /** the changes triggers' feeds, when the runtime has any. */
  feeds?: { stats(): FeedStat[] };
  /** schedule ticks fired, lost to another runtime, skipped, failed. */
  schedules?: { fired: number; lost: number; skipped: number; failed: number };
  /** runtime state refused, by kind. */
  anomalies?: Record<string, number>;
}

type Labels = Record<string, string>;
type Sample = [Labels, number];

/** Label values escaped as the text format requires: backslash, double quote, line feed. */
function labelValue(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

function labelText(labels: Labels): string {
  let out = '';
  for (const k in labels) out += `${out ? ',' : ''}${k}="${labelValue(labels[k]!)}"`;
  return out ? `{${out}}` : '';
}

function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

const kStatuses: readonly ActivationStatus[] = ['ok', 'error', 'timeout'];

export function renderMetrics({ firing: f, catalog, log, dispatchers, activations, feeds, schedules, anomalies }: MetricSources): string {
  const lines: string[] = [];
  const head = (name: string, type: 'counter' | 'gauge' | 'histogram', help: string) => {
    lines.push(`# HELP livelycouch_${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE livelycouch_${name} ${type}`);
  };
  const metric = (name: string, type: 'counter' | 'gauge', help: string, samples: Sample[]) => {
    head(name, type, help);
    for (const [labels, value] of samples) lines.push(`livelycouch_${name}${labelText(labels)} ${num(value)}`);
  };
  const numeric = (key: string) => dispatchers.filter((s) => typeof s[key] === 'number').map((s): Sample => [{ dispatcher: s.name }, s[key] as number]);

  metric('activations_fired_total', 'counter', 'Activations started by any trigger.', [[{}, f.fired]]);
  metric('activations_completed_total', 'counter', 'Activations whose workers all finished.', [[{}, f.completed]]);
  const triggers: Sample[] = [];
  for (const [event, c] of activations.eventStats()) for (const s of kStatuses) triggers.push([{ event, status: s }, c[s]]);
  metric('triggers_total', 'counter', 'Finished activations by event and status (the worst of their workers: error, timeout, ok).', triggers);
  metric('worker_outcomes_total', 'counter', 'Worker outcomes by status.', kStatuses.map((s): Sample => [{ status: s }, f.outcomes[s]]));

  const runs: Sample[] = [];
  for (const [worker, w] of activations.workerStats()) for (const s of kStatuses) runs.push([{ worker, status: s }, w[s]]);
  metric('worker_runs_total', 'counter', 'Messages handled by each worker, by status.', runs);
  head('worker_duration_seconds', 'histogram', 'How long each worker took per message, in seconds.');
  for (const [worker, w] of activations.workerStats()) {
    const lv = labelValue(worker);
    let cumulative = 0;
    for (let b = 0; b < kDurationBuckets.length; b++) {
      cumulative += w.buckets[b]!;
      lines.push(`livelycouch_worker_duration_seconds_bucket{worker="${lv}",le="${kDurationBuckets[b]}"} ${cumulative}`);
    }
    cumulative += w.buckets[kDurationBuckets.length]!;
    lines.push(`livelycouch_worker_duration_seconds_bucket{worker="${lv}",le="+Inf"} ${cumulative}`);
    lines.push(`livelycouch_worker_duration_seconds_sum{worker="${lv}"} ${num(w.sumSeconds)}`);
    lines.push(`livelycouch_worker_duration_seconds_count{worker="${lv}"} ${cumulative}`);
  }

  metric('messages_in_flight', 'gauge', 'Messages being handled by workers.', [[{}, f.inFlight]]);
  metric('messages_waiting', 'gauge', 'Messages waiting for a worker slot (queue depth).', [[{}, f.queued()]]);
  metric('events_loaded', 'gauge', 'Valid events in the matcher.', [[{}, catalog.matcher.size]]);
  metric('events_invalid', 'gauge', 'Event documents skipped with a reason.', [[{}, catalog.invalid().length]]);
  metric('activation_records_written_total', 'counter', 'Activation records written to the logs database.', [[{}, log.written]]);
  metric('activation_records_dropped_total', 'counter', 'Activation records dropped because the store could not keep up.', [[{}, log.dropped]]);
  metric('dispatcher_warm', 'gauge', 'Warm instances per dispatcher.', dispatchers.map((s): Sample => [{ dispatcher: s.name }, s.warm]));
  metric('dispatcher_in_flight', 'gauge', 'Messages in flight per dispatcher.', dispatchers.map((s): Sample => [{ dispatcher: s.name }, s.inFlight]));
  metric('dispatcher_queued', 'gauge', 'Messages a dispatcher holds that no thread or process has taken yet (queue depth).', numeric('queued'));
  metric('dispatcher_utilization', 'gauge', 'Share of the pool\'s capacity spent running workers since it started (0 to 1).', numeric('utilization'));
  if (feeds) {
    const stats = feeds.stats();
    metric('feed_lag', 'gauge', 'Changes of a watched database that its changes trigger has not handled yet.',
      stats.filter((s) => typeof s.lag === 'number').map((s): Sample => [{ event: s.event, db: s.db }, s.lag!]));
    metric('feed_state', 'gauge', 'Each changes trigger\'s feed, labelled with its state (always 1).',
      stats.map((s): Sample => [{ event: s.event, db: s.db, state: s.state }, 1]));
  }
  if (schedules) {
    metric('schedule_ticks_total', 'counter', 'Schedule ticks by outcome: fired here, claimed by another runtime, skipped (not claimed or dispatched in time), failed (store away).',
      (['fired', 'lost', 'skipped', 'failed'] as const).map((k): Sample => [{ outcome: k }, schedules[k]]));
  }
  if (anomalies) {
    metric('state_refused_total', 'counter', 'Runtime state no runtime could have written, found and refused, by kind.',
      Object.entries(anomalies).map(([kind, n]): Sample => [{ kind }, n]));
  }
  return lines.join('\n') + '\n';
}
