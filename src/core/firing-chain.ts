/**
 * Events that come back into Firing from its own activations: what workers emit, lifecycle
 * events (`/lively/worker_started|worker_done|worker_error/<worker>`), a chain stopped for
 * depth, and a process worker's late output. Each carries its parent activation.
 */
import { describeError } from '../shared/errors.ts';
import type { TriggerKind, WorkerOutcome } from '../shared/message.ts';
import type { Logger } from '../shared/logger.ts';
import type { LateOutput } from '../workers/dispatcher.ts';
import type { ActivationSink } from './activation-sink.ts';
import { newActivationId } from './activation-id.ts';
import type { FireInput } from './firing-types.ts';

export type LifecycleKind = 'worker_started' | 'worker_done' | 'worker_error';

export function lifecyclePath(kind: LifecycleKind, worker: string): string {
  return `/lively/${kind}/${worker}`;
}

/** Stopped, and said so where users look: the logs and an activation record with the reason. */
export function recordChainTooDeep(log: ActivationSink, logger: Logger, maxDepth: number,
  trigger: TriggerKind, path: string, params: Record<string, unknown>, depth: number, parent?: string): void {
  const message = `${path} was not fired: the event chain is ${depth} deep, over the limit of ${maxDepth}`;
  logger.warn('event chain too deep: stopped', { path, depth });
  const started = Date.now();
  log.record({
    activation: newActivationId(started), events: [], trigger, path, method: 'POST', started, durationMs: 0,
    workers: [{ worker: '', status: 'error', error: { code: 'LC_CHAIN_TOO_DEEP', message }, logs: [], durationMs: 0 }],
    input: { trigger, method: 'POST', path, params }, parent,
  });
}

/**
 * Where a process worker's late output goes (written after silence had ended its message):
 * a record of its own that names the activation it belongs to (`lateOf`), so that `logs`
 * shows it and nothing is given to another message.
 */
export function lateRecorder(log: ActivationSink, logger: Logger, worker: string, event: string, input: FireInput, activation: string): (late: LateOutput) => void {
  return (late) => {
    const now = Date.now();
    const outcome: WorkerOutcome = { worker, status: 'ok', logs: late.logs, durationMs: 0 };
    if (late.result !== undefined) outcome.result = late.result;
    try {
      log.record({
        activation: newActivationId(now), events: [event], trigger: input.trigger, path: input.path, method: input.method,
        started: now, durationMs: 0, workers: [outcome], lateOf: activation,
      });
    } catch (err) {
      logger.error('late worker output was not recorded', { activation, error: describeError(err) });
    }
  };
}
