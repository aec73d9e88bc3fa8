/** `/_lively/metrics`: the runtime's counters in the Prometheus text exposition format (0.0.4). */
import type { ActivationLog } from '../activations/log.ts';
import type { DispatcherStats } from '../workers/dispatcher.ts';
import type { EventCatalog } from './event-catalog.ts';
import type { Firing } from './firing.ts';

export interface MetricSources {
  firing: Firing;
  catalog: EventCatalog;
  log: ActivationLog;
  dispatchers: DispatcherStats[];
}

type Sample = [Record<string, string>, number];

export function renderMetrics({ firing: f, catalog, log, dispatchers }: MetricSources): string {
  const lines: string[] = [];
  const metric = (name: string, type: 'counter' | 'gauge', help: string, samples: Sample[]) => {
    lines.push(`# HELP livelycouch_${name} ${help}`, `# TYPE livelycouch_${name} ${type}`);
    for (const [labels, value] of samples) {
      const l = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`).join(',');
      lines.push(`livelycouch_${name}${l ? `{${l}}` : ''} ${value}`);
    }
  };
  metric('activations_fired_total', 'counter', 'Activations started by any trigger.', [[{}, f.fired]]);
  metric('activations_completed_total', 'counter', 'Activations whose workers all finished.', [[{}, f.completed]]);
  metric('worker_outcomes_total', 'counter', 'Worker outcomes by status.', (['ok', 'error', 'timeout'] as const).map((s): Sample => [{ status: s }, f.outcomes[s]]));
  metric('messages_in_flight', 'gauge', 'Messages being handled by workers.', [[{}, f.inFlight]]);
  metric('messages_waiting', 'gauge', 'Messages waiting for a worker slot.', [[{}, f.queued()]]);
  metric('events_loaded', 'gauge', 'Valid events in the matcher.', [[{}, catalog.matcher.size]]);
  metric('events_invalid', 'gauge', 'Event documents skipped with a reason.', [[{}, catalog.invalid().length]]);
  metric('activation_records_written_total', 'counter', 'Activation records written to the logs database.', [[{}, log.written]]);
  metric('activation_records_dropped_total', 'counter', 'Activation records dropped because the store could not keep up.', [[{}, log.dropped]]);
  metric('dispatcher_warm', 'gauge', 'Warm instances per dispatcher.', dispatchers.map((s): Sample => [{ dispatcher: s.name }, s.warm]));
  metric('dispatcher_in_flight', 'gauge', 'Messages in flight per dispatcher.', dispatchers.map((s): Sample => [{ dispatcher: s.name }, s.inFlight]));
  return lines.join('\n') + '\n';
}
