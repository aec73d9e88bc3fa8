/**
 * From a trigger to workers: match the events, resolve each worker's arguments and
 * parameters, admit each message through the gate, hand it to its dispatcher, and
 * collect the outcomes into one activation record. Emitted events and lifecycle events
 * come back through the same path with a chain depth, so a loop stops at a limit.
 *
 *   trigger ──► match ──► (404 | 405) | auth ──► plan (per worker) ──► gate (503) ──► dispatch
 *                                                                       │
 *            reply 202 at once, or 200 with outcomes when waiting ◄─────┘ ──► activation log
 *
 * A durable event's HTTP trigger is stored in the journal (./durable.ts) before it starts,
 * and marked finished when its workers are done. A worker entry with a retry policy runs
 * again after an error or timeout, up to its attempts, with an exponential backoff during
 * which it holds no gate slot; what still fails makes the activation dead.
 */
import { randomBytes } from 'node:crypto';
import { LivelyError, describeError } from '../shared/errors.ts';
import type { EmitCommand, HttpRequestPart, LogLine, TriggerKind, WorkerMessage, WorkerOutcome } from '../shared/message.ts';
import { ThrottledWarning, type Logger } from '../shared/logger.ts';
import type { CorsPolicy, EventDef, EventMatch, EventWorkerRef, HttpTrigger } from '../events/model.ts';
import { buildParameters, resolveArguments } from '../events/resolve.ts';
import type { DispatchContext, Dispatcher, LateOutput } from '../workers/dispatcher.ts';
import type { WorkerSpec } from '../workers/revision.ts';
import type { WorkerGate } from '../workers/gate.ts';
import type { WorkerRegistry } from '../workers/registry.ts';
import type { ActivationSink } from './activation-sink.ts';
import type { ActivationInput, ActivationRecord } from '../activations/recorder.ts';
import { activationTime } from '../activations/reader.ts';
import type { EventCatalog } from './event-catalog.ts';
import type { DurableEntry, DurableJournal, DurableRef } from './durable.ts';
import { checkResponse } from './response.ts';
import { kSecretHeaders } from '../shared/credentials.ts';

const kDefaultResponseLimit = 6 * 1024 * 1024;

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

const kAnyTrigger: HttpTrigger = { kind: 'http', path: '', methods: '*', parameters: {} };
const kNoBindings: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;
const bootId = randomBytes(4).toString('hex');
let counter = 0;
let lastMs = -1;
let lastPrefix = '';
/**
 * Unique, time-ordered within a runtime, cheap: no crypto on the hot path, and the time part
 * built once per millisecond. It carries the activation's start time, which is how its record
 * is found again.
 */
export function newActivationId(now = Date.now()): string {
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
  /** worker runs waiting out a retry backoff (they hold no gate slot meanwhile). */
  retrying = 0;
  private readonly backoffTimers = new Set<NodeJS.Timeout>();
  private closed = false;
  /** A worker emitting into a full queue would otherwise log a line per event. */
  private readonly notDispatched: ThrottledWarning;

  constructor(private readonly deps: FiringDeps) {
    this.notDispatched = new ThrottledWarning(deps.logger, 'internal event not dispatched', deps.warnWindowMs);
  }

  /**
   * Matches and admits synchronously where it can, so 404/405/503 are known before the
   * reply; the workers' outcomes arrive through `done`. Speed: when no matched event needs
   * authorising or storing first (the common case), it answers synchronously, and throws
   * its 404/405/503 synchronously; otherwise it returns a promise.
   */
  fire(input: FireInput, byId?: string): Fired | Promise<Fired> {
    const matches = this.matchInput(input, byId);
    let waits = false;
    for (let i = 0; i < matches.length; i++) {
      const event = matches[i]!.event;
      if (event.auth !== 'public' || event.durable) { waits = true; break; }
    }
    return waits ? this.fireChecked(input, matches) : this.start(input, matches);
  }

  /** The rest of fire() for events that need authorising or storing before they start. */
  private async fireChecked(input: FireInput, matches: EventMatch[]): Promise<Fired> {
    if (this.deps.authorize && input.request) {
      for (const m of matches) if (m.event.auth !== 'public') await this.deps.authorize(m.event, input.request.headers);
    }
    const journal = this.deps.journal;
    if (journal && input.trigger === 'http' && matches.some((m) => m.event.durable)) {
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
    const matches: EventMatch[] = [];
    for (const e of entry.events) {
      const event = this.deps.catalog.get(e.id);
      if (event && !event.disabled) matches.push({ event, trigger: kAnyTrigger, bindings: e.bindings });
    }
    if (matches.length === 0) return undefined;
    const input: FireInput = { trigger: 'http', method: entry.method, path: entry.path, params: entry.params, depth: 0 };
    if (entry.request) input.request = entry.request;
    return this.startJournaled(input, matches, entry.activation, ref, false);
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
    this.closed = true;
    this.notDispatched.close();
    for (const t of this.backoffTimers) clearTimeout(t);
    this.backoffTimers.clear();
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
      return this.matchAgain(ev, fireInput);
    });
    return this.start(fireInput, matches);
  }

  /** The event's match for an input it matched before: by path, by id, or (changed since) as a whole. */
  private matchAgain(ev: EventDef, input: FireInput): EventMatch {
    const result = this.deps.catalog.matcher.match(input.method, input.path, input.params);
    const m = result.kind === 'match' ? result.matches.find((x) => x.event.id === ev.id) : undefined;
    if (m) return m;
    if (input.trigger === 'http') {
      try { return this.matchById(ev, input); } catch { /* no HTTP trigger takes the method any more */ }
    }
    return { event: ev, trigger: kAnyTrigger, bindings: kNoBindings };
  }

  /** Fires events emitted by workers and by the runtime itself; never throws. */
  fireInternal(trigger: TriggerKind, path: string, params: Record<string, unknown>, depth: number, parent?: string): void {
    if (depth > this.deps.maxChainDepth) {
      // Stopped, and said so where users look: the logs and an activation record with the reason.
      const message = `${path} was not fired: the event chain is ${depth} deep, over the limit of ${this.deps.maxChainDepth}`;
      this.deps.logger.warn('event chain too deep: stopped', { path, depth });
      const started = Date.now();
      this.deps.log.record({
        activation: newActivationId(started), events: [], trigger, path, method: 'POST', started, durationMs: 0,
        workers: [{ worker: '', status: 'error', error: { code: 'LC_CHAIN_TOO_DEEP', message }, logs: [], durationMs: 0 }],
        input: { trigger, method: 'POST', path, params }, parent,
      });
      return;
    }
    let result = this.deps.catalog.matcher.match('POST', path, params);
    // Internal events are not HTTP requests: a trigger listening with any method receives them.
    if (result.kind === 'method') result = this.deps.catalog.matcher.match(result.allowed[0]!, path, params);
    if (result.kind !== 'match') return;
    try {
      const fired = this.start({ trigger, method: 'POST', path, params, depth, parent }, result.matches);
      fired.done.catch(() => undefined);
    } catch (err) {
      this.notDispatched.warn(path, { path, error: describeError(err) });
    }
  }

  /**
   * A trigger path that matches wins; otherwise `/_events/<event_id>` fires that event by id
   * (the seed's `/_events/email_event`), binding the `":name"` parameters of its trigger.
   */
  private matchInput(input: FireInput, byId?: string): EventMatch[] {
    const { catalog } = this.deps;
    let result = catalog.matcher.match(input.method, input.path, input.params);
    if (result.kind === 'match') return result.matches;
    // HEAD is answered as GET (the server sends no body), unless a trigger names HEAD itself.
    if (input.method === 'HEAD') {
      result = catalog.matcher.match('GET', input.path, input.params);
      if (result.kind === 'match') return result.matches;
    }
    const ev = byId !== undefined ? catalog.get(byId) : undefined;
    if (ev && !ev.disabled) return [this.matchById(ev, input)];
    if (result.kind === 'method') {
      throw new LivelyError('LC_METHOD_NOT_ALLOWED', `${input.path} accepts ${result.allowed.join(', ')}, not ${input.method}`, { allow: result.allowed });
    }
    throw new LivelyError('LC_NO_EVENT', `no event is triggered by ${input.method} ${input.path}`);
  }

  private matchById(ev: EventDef, input: FireInput): EventMatch {
    const http = ev.triggers.filter((t): t is HttpTrigger => t.kind === 'http');
    if (http.length === 0) return { event: ev, trigger: kAnyTrigger, bindings: kNoBindings };
    const takes = (t: HttpTrigger, method: string) => t.methods === '*' || t.methods.includes(method);
    const trigger = http.find((t) => takes(t, input.method)) ?? (input.method === 'HEAD' ? http.find((t) => takes(t, 'GET')) : undefined);
    if (!trigger) {
      const methods = [...new Set(http.flatMap((t) => (t.methods === '*' ? [] : [...t.methods])))];
      throw new LivelyError('LC_METHOD_NOT_ALLOWED', `event "${ev.id}" accepts ${methods.join(', ')}, not ${input.method}`, { allow: methods });
    }
    let bindings = kNoBindings;
    for (const [param, value] of Object.entries(trigger.parameters)) {
      const given = input.params[param];
      if (typeof value === 'string' && value.length > 1 && value[0] === ':' && (typeof given === 'string' || typeof given === 'number' || typeof given === 'boolean')) {
        if (bindings === kNoBindings) bindings = {};
        bindings[value.slice(1)] = String(given);
      }
    }
    return { event: ev, trigger, bindings };
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
    // Speed: one event with one worker (the common case) allocates only what it keeps, arrays
    // of one, and needs no Promise.all, only one reaction.
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

  /**
   * Speed: the closures of the other paths live in methods of their own, so that start()
   * captures nothing and allocates no context for a trigger that runs at once.
   */
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
   * cold one once it is loaded and admitted. Speed: a message waiting for a slot holds a closure
   * and a promise, not a suspended run() (whose frame has room for every local it will use).
   */
  private launch(ref: EventWorkerRef, m: EventMatch, input: FireInput, activation: string, spec: WorkerSpec | undefined, wait: Promise<void> | undefined): Promise<WorkerOutcome> {
    const outcome = spec === undefined ? this.runCold(ref, m, input, activation)
      : wait === undefined ? this.run(spec, m, ref, input, activation)
        : wait.then(() => this.run(spec, m, ref, input, activation));
    return ref.retry ? this.retried(ref, outcome, m, input, activation) : outcome;
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

  /**
   * Runs the worker again while it fails, up to its attempts. Between attempts it holds no
   * gate slot: each retry is admitted afresh (a full queue counts as a failed attempt) and
   * takes the worker's current revision. The backoff doubles after each failure. The outcome
   * is the last attempt's, with `attempts` and a log line for each failure before it.
   */
  private async retried(ref: EventWorkerRef, first: Promise<WorkerOutcome>, m: EventMatch, input: FireInput, activation: string): Promise<WorkerOutcome> {
    const { attempts, backoffMs } = ref.retry!;
    let outcome = await first;
    let n = 1;
    const notes: LogLine[] = [];
    while (outcome.status !== 'ok' && n < attempts) {
      const delay = backoffMs * 2 ** (n - 1);
      notes.push({ t: Date.now(), level: 'warn', msg: `attempt ${n} of ${attempts} failed (${outcome.status}${outcome.error ? `, ${outcome.error.code}: ${outcome.error.message}` : ''}); retrying in ${delay} ms` });
      await this.backoff(delay);
      n++;
      outcome = await this.runCold(ref, m, input, activation);
    }
    return { ...outcome, attempts: n, logs: notes.length ? [...notes, ...outcome.logs] : outcome.logs };
  }

  /** Resolves after `ms`; never, once the firing is closed (the runtime is stopping). */
  private backoff(ms: number): Promise<void> {
    this.retrying++;
    return new Promise<void>((resolve) => {
      if (this.closed) return;
      const t = setTimeout(() => {
        this.backoffTimers.delete(t);
        this.retrying--;
        resolve();
      }, ms);
      this.backoffTimers.add(t);
    });
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

  /** Runs a message admitted through the gate; releases its slot when done. */
  private async run(spec: WorkerSpec, m: EventMatch, ref: EventWorkerRef, input: FireInput, activation: string): Promise<WorkerOutcome> {
    this.inFlight++;
    const lifecycle = this.deps.catalog.hasLifecycleRoutes && input.trigger !== 'lively';
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
      if (lifecycle) this.fireInternal('lively', `/lively/worker_started/${spec.id}`, { activation, event: m.event.id, worker: spec.id }, input.depth + 1, activation);
      const dispatcher = this.dispatcherFor(spec);
      // read per message: a changed secret reaches the next one
      const secrets = spec.secrets?.length ? this.secretsOf(spec) : undefined;
      const ctx: DispatchContext = { spec, message, onEmit: this.emitter(spec.id, input.depth + 1, activation), ...(secrets ? { secrets } : {}) };
      if (dispatcher.name === 'process') ctx.onLate = this.lateRecorder(spec.id, m.event.id, input, activation);
      let outcome = await dispatcher.dispatch(ctx);
      if (m.event.response === spec.id && input.trigger === 'http' && outcome.status === 'ok') outcome = checkResponse(outcome, this.deps.responseLimit ?? kDefaultResponseLimit);
      if (lifecycle) {
        const kind = outcome.status === 'ok' ? 'worker_done' : 'worker_error';
        this.fireInternal('lively', `/lively/${kind}/${spec.id}`, { activation, event: m.event.id, worker: spec.id, status: outcome.status, error: outcome.error }, input.depth + 1, activation);
      }
      return outcome;
    } catch (err) {
      return failed(spec.id, err, Date.now());
    } finally {
      this.inFlight--;
      this.deps.gate.release(spec.id, spec.limits.concurrency);
    }
  }

  /**
   * Where a worker's emitted events go. Speed: built by this method rather than declared as
   * a named function in run(), which under esbuild's keepNames would cost a `__name` call
   * (a defineProperty) on every message.
   */
  private emitter(worker: string, depth: number, activation: string): (e: EmitCommand) => void {
    return (e) => this.fireInternal('event', `/${worker}/${e.emit}`, { ...e.parameters }, depth, activation);
  }

  /**
   * Where a process worker's late output goes (written after silence had ended its message):
   * a record of its own that names the activation it belongs to (`lateOf`), so that `logs`
   * shows it and nothing is given to another message.
   */
  private lateRecorder(worker: string, event: string, input: FireInput, activation: string): (late: LateOutput) => void {
    return (late) => {
      const now = Date.now();
      const outcome: WorkerOutcome = { worker, status: 'ok', logs: late.logs, durationMs: 0 };
      if (late.result !== undefined) outcome.result = late.result;
      try {
        this.deps.log.record({
          activation: newActivationId(now), events: [event], trigger: input.trigger, path: input.path, method: input.method,
          started: now, durationMs: 0, workers: [outcome], lateOf: activation,
        });
      } catch (err) {
        this.deps.logger.error('late worker output was not recorded', { activation, error: describeError(err) });
      }
    };
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

/** What a durable activation needs to run again: no credentials (it was authorised on accept). */
function durableEntry(activation: string, input: FireInput, matches: EventMatch[]): DurableEntry {
  const entry: DurableEntry = {
    activation, method: input.method, path: input.path, params: input.params,
    events: matches.map((m) => ({ id: m.event.id, bindings: m.bindings })),
  };
  if (input.request) {
    const headers = { ...input.request.headers };
    for (const h of kSecretHeaders) delete headers[h];
    entry.request = { query: input.request.query, headers, body: input.request.body };
  }
  return entry;
}

/**
 * An activation of one worker, waiting in the gate for a slot, and the caller's `Fired` for
 * it. Speed: under overload thousands wait, long enough to outlive a young-generation
 * collection, so one waits as this one object (the gate calls its `admitted()`), with no
 * promise until someone asks for `done` (a fire-and-forget HTTP trigger never does); what runs
 * it is made when its turn comes (see bench/waiting.ts). `done` is a getter of the class: in
 * an object literal a getter costs a closure, its context and a slow property definition on
 * every trigger (about 0.7 µs, against 0.05 for a plain literal).
 */
class WaitingActivation implements Fired {
  /** the run, once admitted; until then, what `done` hands out and how to settle it. */
  private outcome?: Promise<WorkerOutcome[]>;
  private resolve?: (o: Promise<WorkerOutcome[]>) => void;

  constructor(private readonly firing: Firing, private readonly ref: EventWorkerRef, private readonly m: EventMatch, private readonly input: FireInput,
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

function failed(worker: string, err: unknown, t0: number): WorkerOutcome {
  const code = err instanceof LivelyError ? err.code : 'LC_WORKER_ERROR';
  return { worker, status: 'error', error: { code, message: describeError(err) }, logs: [], durationMs: Date.now() - t0 };
}
