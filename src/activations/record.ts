/**
 * What one activation record holds. A leaf: the builder (./batch.ts), the recorder, the
 * reader and retention all speak of records, and none of them imports another for it.
 */
import type { HttpRequestPart, WorkerOutcome, TriggerKind } from '../shared/message.ts';

/** What fired an activation: enough to fire the same events again. */
export interface ActivationInput {
  trigger: TriggerKind;
  method: string;
  path: string;
  params: Record<string, unknown>;
  request?: HttpRequestPart;
  change?: unknown;
  tick?: unknown;
}

export interface ActivationRecord {
  activation: string;
  events: string[];
  trigger: TriggerKind;
  path?: string;
  method?: string;
  started: number;
  durationMs: number;
  workers: WorkerOutcome[];
  /** kept for failed activations and the detailed ok ones. */
  input?: ActivationInput;
  /** the activation whose worker emitted the event that started this one. */
  parent?: string;
  /** the activation this one fired again. */
  rerunOf?: string;
  /** a worker failed all its attempts. */
  dead?: boolean;
  /** output a process worker wrote for that activation after silence had ended its message. */
  lateOf?: string;
}
