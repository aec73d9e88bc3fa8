/**
 * An activation of one worker waiting in the gate for a slot, and the caller's `Fired` for it.
 * Under overload thousands wait long enough to outlive a young-generation collection, so each
 * is this one object, with no promise until someone asks for `done` (a fire-and-forget trigger
 * never does); see bench/waiting.ts and docs/benchmarks.md.
 */
import type { WorkerOutcome } from '../shared/message.ts';
import type { EventMatch, EventWorkerRef } from '../events/model.ts';
import type { WorkerSpec } from '../workers/revision.ts';
import type { FireInput, Fired } from './firing-types.ts';

/** What runs the activation once the gate admits it (Firing.startAlone). */
export interface StartsAlone {
  startAlone(ref: EventWorkerRef, m: EventMatch, input: FireInput, activation: string, spec: WorkerSpec | undefined, started: number, events: string[]): Promise<WorkerOutcome[]>;
}

/** `done` is a getter of the class: in an object literal a getter would cost a closure per trigger. */
export class WaitingActivation implements Fired {
  /** the run, once admitted; until then, what `done` hands out and how to settle it. */
  private outcome?: Promise<WorkerOutcome[]>;
  private resolve?: (o: Promise<WorkerOutcome[]>) => void;

  constructor(private readonly firing: StartsAlone, private readonly ref: EventWorkerRef, private readonly m: EventMatch, private readonly input: FireInput,
    readonly activation: string, private readonly spec: WorkerSpec, private readonly started: number, readonly events: string[]) {}

  /** made when asked for (the reply asks once), so that a waiting trigger does not hold it. */
  get workers(): string[] {
    return [this.ref.name];
  }

  admitted(): void {
    const run = this.firing.startAlone(this.ref, this.m, this.input, this.activation, this.spec, this.started, this.events);
    if (this.resolve) this.resolve(run); else this.outcome = run;
  }

  get done(): Promise<WorkerOutcome[]> {
    return (this.outcome ??= new Promise((resolve) => { this.resolve = resolve; }));
  }
}
