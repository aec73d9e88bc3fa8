/** What goes into firing and what comes out: shared by firing.ts and the files it is split into. */
import type { WorkerOutcome } from '../shared/message.ts';
import type { CorsPolicy } from '../events/model.ts';
import type { ActivationInput } from '../activations/recorder.ts';

/** `params` are the message's own parameters (query, body fields). */
export interface FireInput extends ActivationInput {
  depth: number;
  /** the activation whose worker emitted this event. */
  parent?: string;
  /** the activation this one fires again. */
  rerunOf?: string;
}

export interface Fired {
  activation: string;
  events: string[];
  workers: string[];
  done: Promise<WorkerOutcome[]>;
  /** an event with `"response"` matched: the index, in `workers` and the outcomes, of the worker that answers. */
  responder?: number;
  /** the first matched event's `"cors"` that has one. */
  cors?: CorsPolicy;
}
