/**
 * From a trigger to workers: match the events (./firing-match.ts), authorise or store them
 * first (./firing-gating.ts), admit each worker's message through the gate, hand it to its
 * dispatcher, and collect the outcomes into one activation record. Emitted and lifecycle events
 * come back with a chain depth (./firing-chain.ts); retries wait out a backoff (./firing-retry.ts).
 */
import { LivelyError, describeError } from '../shared/errors.ts';
import type { EmitCommand, HttpRequestPart, TriggerKind, WorkerMessage, WorkerOutcome } from '../shared/message.ts';
import { ThrottledWarning, type Logger } from '../shared/logger.ts';
import type { CorsPolicy, EventDef, EventMatch, EventWorkerRef } from '../events/model.ts';
import { buildParameters, resolveArguments } from '../events/resolve.ts';
import type { DispatchContext, Dispatcher } from '../workers/dispatcher.ts';
import type { WorkerSpec } from '../workers/revision.ts';
import type { WorkerGate } from '../workers/gate.ts';
import type { WorkerRegistry } from '../workers/registry.ts';
import type { ActivationSink } from './activation-sink.ts';
import type { ActivationInput, ActivationRecord } from '../activations/recorder.ts';
import { activationTime } from '../activations/reader.ts';
import type { EventCatalog } from './event-catalog.ts';
import type { DurableJournal } from './durable.ts';
import type { DurableEntry, DurableRef } from './durable-store.ts';
import { checkResponse } from './response.ts';
import { newActivationId } from './activation-id.ts';
import { kAnyTrigger, kNoBindings, matchAgain, matchInput, matchInternal } from './firing-match.ts';
import { authorizeMatches, durableEntry, isDurable, needsGating, recoveredTrigger } from './firing-gating.ts';
import { Retries } from './firing-retry.ts';
import { WaitingActivation } from './firing-waiting.ts';
import { lateRecorder, lifecyclePath, recordChainTooDeep } from './firing-chain.ts';
import type { FireInput, Fired } from './firing-types.ts';

const kDefaultResponseLimit = 6 * 1024 * 1024;

export type { FireInput, Fired } from './firing-types.ts';

export interface FiringDeps {
  catalog: EventCatalog;
  registry: WorkerRegistry;
  gate: WorkerGate;
  dispatchers: readonly Dispatcher[];
  log: ActivationSink;
  logger: Logger;
  maxChainDepth: number;
  /** throws LC_UNAUTHORIZED / LC_FORBIDDEN; only called for events whose auth is not public. */
  authorize?: (event: EventDef, headers: HttpRequestPart['headers']) => Promise<void>;
  /** where durable events' HTTP triggers are stored before they are acknowledged. */
  journal?: Pick<DurableJournal, 'accept' | 'finish'>;
  /** repeated warnings of one kind and path are logged once per this many ms (default 10 s). */
  warnWindowMs?: number;
  /** bytes a responding worker's body may have (LIVELY_RESPONSE_LIMIT); 6 MiB by default. */
  responseLimit?: number;
  /** the current values of the secrets a worker names; throws LC_SECRET_MISSING. */
  secrets?: (workerId: string, names: readonly string[]) => Record<string, string>;
}

export class Firing {
  private readonly dispatcherBySpec = new WeakMap<WorkerSpec, Dispatcher>();
  inFlight = 0;
  fired = 0;
  /** activations whose workers have all finished (benchmarks count throughput on it). */
  completed = 0;
  /** worker outcomes by status, for metrics. */
  readonly outcomes = { ok: 0, error: 0, timeout: 0 };
  private readonly retries = new Retries();
  /** A worker emitting into a full queue would otherwise log a line per event. */
  private readonly notDispatched: ThrottledWarning;

  constructor(private readonly deps: FiringDeps) {
    this.notDispatched = new ThrottledWarning(deps.logger, 'internal event not dispatched', deps.warnWindowMs);
  }

  /** worker runs waiting out a retry backoff (they hold no gate slot meanwhile). */
  get retrying(): number {
    return this.retries.waiting;
  }

  /**
   * Matches and admits synchronously where it can, so 404/405/503 are known before the
   * reply; the workers' outcomes arrive through `done`. When no matched event needs
   * authorising or storing first (the common case), it answers, and throws its 404/405/503,
   * synchronously; otherwise it returns a promise.
   */
  fire(input: FireInput, byId?: string): Fired | Promise<Fired> {
    const matches = matchInput(this.deps.catalog, input, byId);
    return needsGating(matches) ? this.fireChecked(input, matches) : this.start(input, matches);
  }

  /** The rest of fire() for events that need authorising or storing before they start. */
  private async fireChecked(input: FireInput, matches: EventMatch[]): Promise<Fired> {
    if (this.deps.authorize && input.request) await authorizeMatches(this.deps.authorize, matches, input.request.headers);
    const journal = this.deps.journal;
    if (journal && isDurable(input, matches)) {
      // Stored first (throws LC_NOT_PERSISTED, a 503, when it cannot be): nothing runs or is
      // acknowledged that a crash could lose.
      const activation = newActivationId();
      const ref = await journal.accept(durableEntry(activation, input, matches));
      return this.startJournaled(input, matches, activation, ref);
    }
    return this.start(input, matches);
  }

  /**
   * Runs a stored durable activation again (after a crash), under its own activation id, with
   * the events as they are now. Undefined when none of its events exists or is enabled any
   * more; the caller then marks it finished. Throws LC_QUEUE_FULL when the gate is full.
   */
  recover(entry: DurableEntry, ref: DurableRef): Fired | undefined {
    const recovered = recoveredTrigger(this.deps.catalog, entry);
    if (recovered === undefined) return undefined;
    return this.startJournaled(recovered.input, recovered.matches, entry.activation, ref, false);
  }

  /** `acknowledging`: a refusal is the caller's 503, so the entry is not kept; a re-run keeps it. */
  private startJournaled(input: FireInput, matches: EventMatch[], activation: string, ref: DurableRef, acknowledging = true): Fired {
    const journal = this.deps.journal!;
    let fired: Fired;
    try {
      fired = this.start(input, matches, activation);
    } catch (err) {
      if (acknowledging) journal.finish(ref);
      throw err;
    }
    void fired.done.then(() => journal.finish(ref));
    return fired;
  }

  /** Stops waiting retries: their runs are abandoned (a durable one is re-run at the next start). */
  close(): void {
    this.notDispatched.close();
    this.retries.close();
  }

  /** Messages waiting for a worker slot. */
  queued(): number {
    return this.deps.gate.stats().queued;
  }

  /** Fires one known event (changes and schedule triggers); outcomes through `done`. */
  fireEvent(event: EventDef, input: FireInput): Fired {
    return this.start(input, [{ event, trigger: kAnyTrigger, bindings: kNoBindings }]);
  }

  /**
   * Fires the given events again with a stored input, as a new activation marked `rerunOf`.
   * Throws LC_NO_EVENT naming an event that is gone or disabled (nothing runs then).
   */
  rerun(input: ActivationInput, eventIds: readonly string[], rerunOf: string): Fired {
    const fireInput: FireInput = { ...input, depth: 0, rerunOf };
    const matches = eventIds.map((id) => {
      const ev = this.deps.catalog.get(id);
      if (!ev) throw new LivelyError('LC_NO_EVENT', `event "${id}" no longer exists`, { event: id });
      if (ev.disabled) throw new LivelyError('LC_NO_EVENT', `event "${id}" is disabled`, { event: id });
      return matchAgain(this.deps.catalog, ev, fireInput);
    });
    return this.start(fireInput, matches);
  }

  /** Fires events emitted by workers and by the runtime itself; never throws. */
  fireInternal(trigger: TriggerKind, path: string, params: Record<string, unknown>, depth: number, parent?: string): void {
    if (depth > this.deps.maxChainDepth) {
      recordChainTooDeep(this.deps.log, this.deps.logger, this.deps.maxChainDepth, trigger, path, params, depth, parent);
      return;
    }
    const matches = matchInternal(this.deps.catalog, path, params);
    if (matches === undefined) return;
    try {
      const fired = this.start({ trigger, method: 'POST', path, params, depth, parent }, matches);
      fired.done.catch(() => undefined);
    } catch (err) {
      this.notDispatched.warn(path, { path, error: describeError(err) });
    }
  }

  /**
   * `activation`: a durable activation keeps the id it was acknowledged with; its record then
   * starts at that acceptance time, which is also where a lookup by id finds it.
   */
  private start(input: FireInput, matches: EventMatch[], activation?: string): Fired {
    const started = activation === undefined ? Date.now() : activationTime(activation) ?? Date.now();
    activation ??= newActivationId(started);
    const id = activation;
    const { registry, gate } = this.deps;
    // One event with one worker (the common case): arrays of one, and one reaction, no Promise.all.
    if (matches.length === 1 && matches[0]!.event.workers.length === 1) {
      const m = matches[0]!;
      const ref = m.event.workers[0]!;
      const spec = registry.peek(ref.name);
      const events = [m.event.id];
      // A warm worker's admission is decided now, so a full queue is a 503 for the caller.
      this.fired++;
      let fired: Fired;
      if (spec !== undefined && !gate.tryAdmit(spec.id, spec.limits.concurrency, spec.limits.queue)) {
        const waiting = new WaitingActivation(this, ref, m, input, id, spec, started, events);
        gate.queue(spec.id, waiting);
        fired = waiting;
      } else {
        fired = { activation: id, events, workers: [ref.name], done: this.startAlone(ref, m, input, id, spec, started, events) };
      }
      const ev = m.event;
      if (ev.response !== undefined || ev.cors !== undefined) {
        if (ev.response !== undefined) fired.responder = 0;
        if (ev.cors !== undefined) fired.cors = ev.cors;
      }
      return fired;
    }
    return this.startMany(input, matches, id, started);
  }

  /** Several events or workers; apart from start() so that start() captures nothing. */
  private startMany(input: FireInput, matches: EventMatch[], id: string, started: number): Fired {
    const { registry, gate } = this.deps;
    const events: string[] = [];
    const workers: string[] = [];
    const specs: Array<WorkerSpec | undefined> = [];
    const waits: Array<Promise<void> | undefined> = [];
    // Every warm worker is admitted before any starts: refused part-way, nothing runs.
    try {
      for (const m of matches) {
        events.push(m.event.id);
        for (const ref of m.event.workers) {
          workers.push(ref.name);
          const spec = registry.peek(ref.name);
          waits.push(spec === undefined ? undefined : gate.admit(spec.id, spec.limits.concurrency, spec.limits.queue));
          specs.push(spec);
        }
      }
    } catch (err) {
      for (const spec of specs) if (spec !== undefined) gate.release(spec.id, spec.limits.concurrency);
      throw err;
    }
    const pending: Array<Promise<WorkerOutcome>> = [];
    let i = 0;
    let responder: number | undefined;
    let cors: CorsPolicy | undefined;
    for (const m of matches) {
      cors ??= m.event.cors;
      for (const ref of m.event.workers) {
        if (responder === undefined && m.event.response === ref.name) responder = i;
        pending.push(this.launch(ref, m, input, id, specs[i], waits[i]));
        i++;
      }
    }
    this.fired++;
    const done = Promise.all(pending).then((outcomes) => this.finish(id, events, input, started, outcomes));
    const fired: Fired = { activation: id, events, workers, done };
    if (responder !== undefined) fired.responder = responder;
    if (cors !== undefined) fired.cors = cors;
    return fired;
  }

  /**
   * The only worker of an activation, admitted: its record is taken before anyone waiting on
   * `done` sees its outcome. Not private: a WaitingActivation calls it when its turn comes.
   */
  startAlone(ref: EventWorkerRef, m: EventMatch, input: FireInput, activation: string, spec: WorkerSpec | undefined, started: number, events: string[]): Promise<WorkerOutcome[]> {
    return this.launch(ref, m, input, activation, spec, undefined).then((o) => this.finish(activation, events, input, started, [o]));
  }

  /**
   * Starts one worker of an activation: a warm one admitted (now, or when `wait` resolves), a
   * cold one once it is loaded and admitted. A message waiting for a slot holds a closure and
   * a promise, not a suspended run().
   */
  private launch(ref: EventWorkerRef, m: EventMatch, input: FireInput, activation: string, spec: WorkerSpec | undefined, wait: Promise<void> | undefined): Promise<WorkerOutcome> {
    const outcome = spec === undefined ? this.runCold(ref, m, input, activation)
      : wait === undefined ? this.run(spec, m, ref, input, activation)
        : wait.then(() => this.run(spec, m, ref, input, activation));
    return ref.retry ? this.retries.retried(ref, outcome, () => this.runCold(ref, m, input, activation)) : outcome;
  }

  /** Counts a finished activation and hands its record to the log; returns its outcomes. */
  private finish(activation: string, events: string[], input: FireInput, started: number, outcomes: WorkerOutcome[]): WorkerOutcome[] {
    this.completed++;
    let dead = false;
    for (let i = 0; i < outcomes.length; i++) {
      const o = outcomes[i]!;
      this.outcomes[o.status]++;
      if (o.status !== 'ok' && o.attempts !== undefined) dead = true;
    }
    const rec: ActivationRecord = {
      activation, events, trigger: input.trigger, path: input.path, method: input.method,
      started, durationMs: Date.now() - started, workers: outcomes, input, parent: input.parent, rerunOf: input.rerunOf,
    };
    if (dead) rec.dead = true;
    try {
      this.deps.log.record(rec);
    } catch (err) {
      // The outcomes stand whatever became of their record (the runtime's sink never throws).
      this.deps.logger.error('an activation record was not taken', { activation, error: describeError(err) });
    }
    return outcomes;
  }

  private async runCold(ref: EventWorkerRef, m: EventMatch, input: FireInput, activation: string): Promise<WorkerOutcome> {
    const name = ref.name;
    const t0 = Date.now();
    let spec: WorkerSpec;
    try {
      spec = await this.deps.registry.get(name);
    } catch (err) {
      return failed(name, err, t0);
    }
    let wait: Promise<void> | undefined;
    try {
      wait = this.deps.gate.admit(spec.id, spec.limits.concurrency, spec.limits.queue);
    } catch (err) {
      return failed(name, err, t0);
    }
    if (wait) await wait;
    return this.run(spec, m, ref, input, activation);
  }

  /**
   * Runs a message admitted through the gate; releases its slot when done. Not an async
   * function: a suspended one would hold its whole frame while the worker runs, and under load
   * hundreds are in flight, each kept through young-generation collections. The reaction holds
   * only what finishing needs.
   */
  private run(spec: WorkerSpec, m: EventMatch, ref: EventWorkerRef, input: FireInput, activation: string): Promise<WorkerOutcome> {
    this.inFlight++;
    const lifecycle = this.deps.catalog.hasLifecycleRoutes && input.trigger !== 'lively';
    let pending: Promise<WorkerOutcome>;
    try {
      const args = resolveArguments(spec.arguments, ref.arguments, m.bindings);
      const message: WorkerMessage = {
        activation, event: m.event.id, worker: spec.id, trigger: input.trigger,
        method: input.method, path: input.path,
        arguments: args,
        parameters: buildParameters(input.params, m.bindings, args),
      };
      if (ref.forward) message.forward = ref.forward;
      if (input.request) message.request = input.request;
      if (input.change !== undefined) message.change = input.change;
      if (input.tick !== undefined) message.tick = input.tick;
      if (lifecycle) this.fireInternal('lively', lifecyclePath('worker_started', spec.id), { activation, event: m.event.id, worker: spec.id }, input.depth + 1, activation);
      const dispatcher = this.dispatcherFor(spec);
      // read per message: a changed secret reaches the next one
      const secrets = spec.secrets?.length ? this.secretsOf(spec) : undefined;
      const ctx: DispatchContext = { spec, message, onEmit: this.emitter(spec.id, input.depth + 1, activation), ...(secrets ? { secrets } : {}) };
      if (dispatcher.name === 'process') ctx.onLate = lateRecorder(this.deps.log, this.deps.logger, spec.id, m.event.id, input, activation);
      pending = dispatcher.dispatch(ctx);
    } catch (err) {
      this.ran(spec);
      return Promise.resolve(failed(spec.id, err, Date.now()));
    }
    return pending.then(
      (outcome) => this.finishRun(spec, m, input, activation, lifecycle, outcome),
      (err: unknown) => { this.ran(spec); return failed(spec.id, err, Date.now()); },
    );
  }

  /** What run() does once the worker answered: the response check and lifecycle event, then the slot is free. */
  private finishRun(spec: WorkerSpec, m: EventMatch, input: FireInput, activation: string, lifecycle: boolean, outcome: WorkerOutcome): WorkerOutcome {
    try {
      if (m.event.response === spec.id && input.trigger === 'http' && outcome.status === 'ok') outcome = checkResponse(outcome, this.deps.responseLimit ?? kDefaultResponseLimit);
      if (lifecycle) {
        const kind = outcome.status === 'ok' ? 'worker_done' : 'worker_error';
        this.fireInternal('lively', lifecyclePath(kind, spec.id), { activation, event: m.event.id, worker: spec.id, status: outcome.status, error: outcome.error }, input.depth + 1, activation);
      }
      return outcome;
    } catch (err) {
      return failed(spec.id, err, Date.now());
    } finally {
      this.ran(spec);
    }
  }

  /** A run is over: its slot goes to the next message waiting. */
  private ran(spec: WorkerSpec): void {
    this.inFlight--;
    this.deps.gate.release(spec.id, spec.limits.concurrency);
  }

  /** Where a worker's emitted events go: built here, not as a named function in run() (see docs/benchmarks.md). */
  private emitter(worker: string, depth: number, activation: string): (e: EmitCommand) => void {
    return (e) => this.fireInternal('event', `/${worker}/${e.emit}`, { ...e.parameters }, depth, activation);
  }

  private secretsOf(spec: WorkerSpec): Record<string, string> {
    if (!this.deps.secrets) throw new LivelyError('LC_SECRET_MISSING', `worker "${spec.id}": this runtime has no secrets`);
    return this.deps.secrets(spec.id, spec.secrets!);
  }

  private dispatcherFor(spec: WorkerSpec): Dispatcher {
    let d = this.dispatcherBySpec.get(spec);
    if (!d) {
      d = this.deps.dispatchers.find((x) => x.serves(spec));
      if (!d) throw new LivelyError('LC_UNKNOWN_TYPE', `no interpreter is configured for type "${spec.type}"`);
      this.dispatcherBySpec.set(spec, d);
    }
    return d;
  }
}

function failed(worker: string, err: unknown, t0: number): WorkerOutcome {
  const code = err instanceof LivelyError ? err.code : 'LC_WORKER_ERROR';
  return { worker, status: 'error', error: { code, message: describeError(err) }, logs: [], durationMs: Date.now() - t0 };
}
