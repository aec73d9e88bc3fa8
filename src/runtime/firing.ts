/**
 * From a trigger to workers: match the events, resolve each worker's arguments and
 * parameters, admit each message through the gate, hand it to its dispatcher, and
 * collect the outcomes into one activation record. Emitted events and lifecycle events
 * come back through the same path with a chain depth, so a loop stops at a limit.
 *
 *   trigger ──► match ──► (404 | 405) | auth ──► plan (per worker) ──► gate (503) ──► dispatch
 *                                                                       │
 *            reply 202 at once, or 200 with outcomes when waiting ◄─────┘ ──► activation log
 */
import { randomBytes } from 'node:crypto';
import { LivelyError, describeError } from '../shared/errors.ts';
import type { EmitCommand, HttpRequestPart, TriggerKind, WorkerMessage, WorkerOutcome } from '../shared/message.ts';
import type { Logger } from '../shared/log.ts';
import type { EventDef, EventMatch, HttpTrigger } from '../events/model.ts';
import { buildParameters, resolveArguments } from '../events/resolve.ts';
import type { Dispatcher } from '../workers/dispatcher.ts';
import type { WorkerSpec } from '../workers/spec.ts';
import type { WorkerGate } from '../workers/gate.ts';
import type { WorkerRegistry } from '../workers/registry.ts';
import type { ActivationLog } from '../activations/log.ts';
import type { EventCatalog } from './event-catalog.ts';

export interface FireInput {
  trigger: TriggerKind;
  method: string;
  path: string;
  /** the message's own parameters (query, body fields). */
  params: Record<string, unknown>;
  request?: HttpRequestPart;
  change?: unknown;
  tick?: unknown;
  depth: number;
}

export interface Fired {
  activation: string;
  events: string[];
  workers: string[];
  done: Promise<WorkerOutcome[]>;
}

export interface FiringDeps {
  catalog: EventCatalog;
  registry: WorkerRegistry;
  gate: WorkerGate;
  dispatchers: readonly Dispatcher[];
  log: ActivationLog;
  logger: Logger;
  maxChainDepth: number;
  /** throws LC_UNAUTHORIZED / LC_FORBIDDEN; only called for events whose auth is not public. */
  authorize?: (event: EventDef, headers: HttpRequestPart['headers']) => Promise<void>;
}

const ANY_TRIGGER: HttpTrigger = { kind: 'http', path: '', methods: '*', parameters: {} };
const NO_BINDINGS: Record<string, string> = Object.freeze({}) as Record<string, string>;
const bootId = randomBytes(4).toString('hex');
let counter = 0;
let lastMs = 0;
let lastPrefix = '';
/** Unique, time-ordered within a runtime, cheap: no crypto on the hot path. */
export function newActivationId(): string {
  const now = Date.now();
  if (now !== lastMs) { lastMs = now; lastPrefix = `${bootId}-${now.toString(36)}-`; }
  return lastPrefix + (counter++).toString(36);
}

export class Firing {
  private readonly dispatcherBySpec = new WeakMap<WorkerSpec, Dispatcher>();
  inFlight = 0;
  fired = 0;
  /** activations whose workers have all finished (benchmarks count throughput on it). */
  completed = 0;
  /** worker outcomes by status, for metrics. */
  readonly outcomes = { ok: 0, error: 0, timeout: 0 };

  constructor(private readonly deps: FiringDeps) {}

  /**
   * Matches and admits synchronously where it can, so 404/405/503 are known before the
   * reply; the workers' outcomes arrive through `done`.
   */
  async fire(input: FireInput, byId?: string): Promise<Fired> {
    const matches = this.matchInput(input, byId);
    if (this.deps.authorize && input.request) {
      for (const m of matches) if (m.event.auth !== 'public') await this.deps.authorize(m.event, input.request.headers);
    }
    return this.start(input, matches);
  }

  /** Messages waiting for a worker slot. */
  queued(): number {
    return this.deps.gate.stats().queued;
  }

  /** Fires one known event (changes and schedule triggers); outcomes through `done`. */
  fireEvent(event: EventDef, input: FireInput): Fired {
    return this.start(input, [{ event, trigger: ANY_TRIGGER, bindings: NO_BINDINGS }]);
  }

  /** Fires events emitted by workers and by the runtime itself; never throws. */
  fireInternal(trigger: TriggerKind, path: string, params: Record<string, unknown>, depth: number): void {
    if (depth > this.deps.maxChainDepth) {
      // Stopped, and said so where users look: the logs and an activation record with the reason.
      const message = `${path} was not fired: the event chain is ${depth} deep, over the limit of ${this.deps.maxChainDepth}`;
      this.deps.logger.warn('event chain too deep: stopped', { path, depth });
      this.deps.log.record({
        activation: newActivationId(), events: [], trigger, path, method: 'POST', started: Date.now(), durationMs: 0,
        workers: [{ worker: '', status: 'error', error: { code: 'LC_CHAIN_TOO_DEEP', message }, logs: [], durationMs: 0 }],
      });
      return;
    }
    let result = this.deps.catalog.matcher.match('POST', path, params);
    // Internal events are not HTTP requests: a trigger listening with any method receives them.
    if (result.kind === 'method') result = this.deps.catalog.matcher.match(result.allowed[0]!, path, params);
    if (result.kind !== 'match') return;
    try {
      const fired = this.start({ trigger, method: 'POST', path, params, depth }, result.matches);
      fired.done.catch(() => undefined);
    } catch (err) {
      this.deps.logger.warn('internal event not dispatched', { path, error: describeError(err) });
    }
  }

  /**
   * A trigger path that matches wins; otherwise `/_events/<event_id>` fires that event by id
   * (the seed's `/_events/email_event`), binding the `":name"` parameters of its trigger.
   */
  private matchInput(input: FireInput, byId?: string): EventMatch[] {
    const { catalog } = this.deps;
    const result = catalog.matcher.match(input.method, input.path, input.params);
    if (result.kind === 'match') return result.matches;
    const ev = byId !== undefined ? catalog.get(byId) : undefined;
    if (ev && !ev.disabled) return [this.matchById(ev, input)];
    if (result.kind === 'method') {
      throw new LivelyError('LC_METHOD_NOT_ALLOWED', `${input.path} accepts ${result.allowed.join(', ')}, not ${input.method}`, { allow: result.allowed });
    }
    throw new LivelyError('LC_NO_EVENT', `no event is triggered by ${input.method} ${input.path}`);
  }

  private matchById(ev: EventDef, input: FireInput): EventMatch {
    const http = ev.triggers.filter((t): t is HttpTrigger => t.kind === 'http');
    if (http.length === 0) return { event: ev, trigger: ANY_TRIGGER, bindings: NO_BINDINGS };
    const trigger = http.find((t) => t.methods === '*' || t.methods.includes(input.method));
    if (!trigger) {
      const methods = [...new Set(http.flatMap((t) => (t.methods === '*' ? [] : [...t.methods])))];
      throw new LivelyError('LC_METHOD_NOT_ALLOWED', `event "${ev.id}" accepts ${methods.join(', ')}, not ${input.method}`, { allow: methods });
    }
    let bindings = NO_BINDINGS;
    for (const [param, value] of Object.entries(trigger.parameters)) {
      const given = input.params[param];
      if (typeof value === 'string' && value.length > 1 && value[0] === ':' && (typeof given === 'string' || typeof given === 'number' || typeof given === 'boolean')) {
        if (bindings === NO_BINDINGS) bindings = {};
        bindings[value.slice(1)] = String(given);
      }
    }
    return { event: ev, trigger, bindings };
  }

  private start(input: FireInput, matches: EventMatch[]): Fired {
    const activation = newActivationId();
    const started = Date.now();
    const events: string[] = [];
    const workers: string[] = [];
    const pending: Array<Promise<WorkerOutcome>> = [];
    const admitted: Array<{ name: string; concurrency: number }> = [];
    try {
      for (const m of matches) {
        events.push(m.event.id);
        for (const ref of m.event.workers) {
          workers.push(ref.name);
          const spec = this.deps.registry.peek(ref.name);
          if (spec) {
            // Warm worker: admission is decided now, so a full queue is a 503 for the caller.
            const wait = this.deps.gate.admit(spec.id, spec.limits.concurrency);
            admitted.push({ name: spec.id, concurrency: spec.limits.concurrency });
            pending.push(this.run(spec, wait, m, ref.arguments, input, activation));
          } else {
            pending.push(this.runCold(ref.name, m, ref.arguments, input, activation));
          }
        }
      }
    } catch (err) {
      // Refused part-way: nothing of this activation runs.
      for (const a of admitted) this.deps.gate.release(a.name, a.concurrency);
      throw err;
    }
    this.fired++;
    const done = Promise.all(pending);
    done.then((outcomes) => {
      this.completed++;
      for (const o of outcomes) this.outcomes[o.status]++;
      this.deps.log.record({
        activation, events, trigger: input.trigger, path: input.path, method: input.method,
        started, durationMs: Date.now() - started, workers: outcomes,
      });
    });
    return { activation, events, workers, done };
  }

  private async runCold(name: string, m: EventMatch, eventArgs: Record<string, unknown>, input: FireInput, activation: string): Promise<WorkerOutcome> {
    const t0 = Date.now();
    let spec: WorkerSpec;
    try {
      spec = await this.deps.registry.get(name);
    } catch (err) {
      return failed(name, err, t0);
    }
    let wait: Promise<void> | undefined;
    try {
      wait = this.deps.gate.admit(spec.id, spec.limits.concurrency);
    } catch (err) {
      return failed(name, err, t0);
    }
    return this.run(spec, wait, m, eventArgs, input, activation);
  }

  private async run(spec: WorkerSpec, wait: Promise<void> | undefined, m: EventMatch, eventArgs: Record<string, unknown>, input: FireInput, activation: string): Promise<WorkerOutcome> {
    if (wait) await wait;
    this.inFlight++;
    const lifecycle = this.deps.catalog.hasLifecycleRoutes && input.trigger !== 'lively';
    try {
      const args = resolveArguments(spec.arguments, eventArgs, m.bindings);
      const message: WorkerMessage = {
        activation, event: m.event.id, worker: spec.id, trigger: input.trigger,
        method: input.method, path: input.path,
        arguments: args,
        parameters: buildParameters(input.params, m.bindings, args),
      };
      if (input.request) message.request = input.request;
      if (input.change !== undefined) message.change = input.change;
      if (input.tick !== undefined) message.tick = input.tick;
      if (lifecycle) this.fireInternal('lively', `/lively/worker_started/${spec.id}`, { activation, event: m.event.id, worker: spec.id }, input.depth + 1);
      const dispatcher = this.dispatcherFor(spec);
      const depth = input.depth + 1;
      const onEmit = (e: EmitCommand) => this.fireInternal('event', `/${spec.id}/${e.emit}`, { ...e.parameters }, depth);
      const outcome = await dispatcher.dispatch({ spec, message, onEmit });
      if (lifecycle) {
        const kind = outcome.status === 'ok' ? 'worker_done' : 'worker_error';
        this.fireInternal('lively', `/lively/${kind}/${spec.id}`, { activation, event: m.event.id, worker: spec.id, status: outcome.status, error: outcome.error }, input.depth + 1);
      }
      return outcome;
    } catch (err) {
      return failed(spec.id, err, Date.now());
    } finally {
      this.inFlight--;
      this.deps.gate.release(spec.id, spec.limits.concurrency);
    }
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
