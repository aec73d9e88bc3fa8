/**
 * What the HTTP server asks of a running runtime (the `EventFirer` of src/server/firer.ts):
 * HTTP triggers, health and status, metrics, activation records and reruns, secrets. It reads
 * the parts the composition root (src/runtime.ts) wired and wires nothing itself.
 */
import type { ServerScope } from '../store/couch.ts';
import type { Config } from '../config/index.ts';
import { LivelyError } from '../shared/errors.ts';
import type { EmbeddedStore } from '../store/embedded/supervisor.ts';
import type { Placement, StateCompactor } from '../store/state-db.ts';
import type { ActivationLog } from '../activations/recorder.ts';
import type { ActivationRecord } from '../activations/record.ts';
import type { ActivationPage, ActivationQuery } from '../activations/reader.ts';
import type { WorkerRegistry } from '../workers/registry.ts';
import type { Dispatcher } from '../workers/dispatcher.ts';
import type { IsolateDispatcher } from '../workers/dispatch/isolate.ts';
import type { EventFirer, HttpTriggerReply, HttpTriggerRequest } from '../server/firer.ts';
import { typedQuery } from '../server/trigger.ts';
import { corsHeaders } from '../server/cors.ts';
import type { ChangesTriggers } from '../triggers/changes.ts';
import type { ScheduleTriggers } from '../triggers/schedule.ts';
import type { Anomalies } from '../triggers/anomalies.ts';
import type { EventCatalog } from './event-catalog.ts';
import type { Firing, Fired } from './firing.ts';
import type { DurableJournal } from './durable.ts';
import type { SecretStore } from './secrets.ts';
import { renderMetrics, type ActivationMetrics } from './metrics.ts';
import { firedReply, optionsReply } from './endpoint.ts';
import { optionsFor } from './options.ts';

/** The started parts the firer answers from; `url` and `stopping` change after it is made. */
export interface FirerParts {
  config: Readonly<Config>;
  nano: ServerScope;
  store?: EmbeddedStore;
  catalog: EventCatalog;
  registry: WorkerRegistry;
  firing: Firing;
  dispatchers: Dispatcher[];
  isolates: IsolateDispatcher;
  activationLog: ActivationLog;
  activationMetrics: ActivationMetrics;
  secretStore: SecretStore;
  journal: DurableJournal;
  anomalies: Anomalies;
  changesTriggers: ChangesTriggers;
  scheduleTriggers: ScheduleTriggers;
  statePlacement: Placement;
  stateCompactor: StateCompactor;
  url(): string;
  stopping(): boolean;
}

export class RuntimeFirer implements EventFirer {
  constructor(private readonly parts: FirerParts) {}

  /**
   * Answers synchronously (and throws synchronously) when the firing does and the caller does
   * not wait for the outcomes, so the server's fast path awaits nothing; a promise otherwise.
   */
  fireHttp(req: HttpTriggerRequest): HttpTriggerReply | Promise<HttpTriggerReply> {
    const { catalog, firing, config } = this.parts;
    if (this.parts.stopping()) throw new LivelyError('LC_SHUTTING_DOWN');
    if (req.method === 'OPTIONS') {
      const answer = optionsFor(catalog, req.path, req.path.slice(1));
      if (answer) return optionsReply(answer, req);
    }
    const body = req.body;
    // parameters read query values as JSON where they are JSON (?n=2 → 2); request.query keeps the strings
    const query = typedQuery(req.query);
    const params = body && typeof body === 'object' && !Array.isArray(body) && !Buffer.isBuffer(body)
      ? { ...query, ...(body as Record<string, unknown>) }
      : query;
    let fired: Fired | Promise<Fired>;
    try {
      fired = firing.fire(
        { trigger: 'http', method: req.method, path: req.path, params, request: { query: req.query, headers: req.headers, body }, depth: 0 },
        req.path.slice(1),
      );
    } catch (err) {
      throw this.withCors(err, req);
    }
    if (fired instanceof Promise) return fired.then((f) => firedReply(f, req, config.responseLimit), (err) => { throw this.withCors(err, req); });
    return firedReply(fired, req, config.responseLimit);
  }

  /**
   * A refusal before anything ran (405, 401/403, a full queue's 503) still carries the CORS
   * headers of the path's event, so that a page on another origin can read why.
   */
  private withCors(err: unknown, req: HttpTriggerRequest): unknown {
    const origin = req.headers.origin;
    if (!(err instanceof LivelyError) || origin === undefined) return err;
    const { catalog } = this.parts;
    const routes = catalog.matcher.routesFor(req.path);
    const byId = routes.length === 0 ? catalog.get(req.path.slice(1)) : undefined;
    const cors = byId?.cors ?? routes.find((r) => r.event.cors !== undefined)?.event.cors;
    const headers = cors && corsHeaders(cors, Array.isArray(origin) ? origin[0] : origin);
    if (headers) err.headers = { ...err.headers, ...headers };
    return err;
  }

  async health(): Promise<{ ok: boolean; store: boolean }> {
    let store = false;
    try {
      await this.parts.nano.info();
      store = true;
    } catch { /* reported below */ }
    return { ok: store && !this.parts.stopping(), store };
  }

  async status(): Promise<Record<string, unknown>> {
    const p = this.parts;
    return {
      ok: !p.stopping(),
      url: p.url(),
      store: p.store ? { embedded: true, pid: p.store.pid, syncsWrites: p.store.syncsWrites } : { embedded: false },
      events: { loaded: p.catalog.matcher.size, invalid: p.catalog.invalid() },
      workers: { loaded: p.registry.loaded(), invalid: p.registry.invalid(), problems: this.workerProblems() },
      dispatchers: p.dispatchers.map((d) => d.stats()),
      isolateEngine: p.isolates.engine(),
      feeds: p.changesTriggers.stats(),
      schedules: p.scheduleTriggers.stats(),
      state: { db: `${p.config.dbPrefix}logs`, ...p.statePlacement, size: p.stateCompactor.lastSize, compactions: p.stateCompactor.compactions },
      anomalies: p.anomalies.stats(),
      activations: { fired: p.firing.fired, completed: p.firing.completed, inFlight: p.firing.inFlight, waiting: p.firing.queued(), outcomes: p.firing.outcomes, logged: p.activationLog.written, dropped: p.activationLog.dropped },
      retries: { waiting: p.firing.retrying },
      durable: p.journal.stats,
    };
  }

  get secrets(): { names(): string[]; set(name: string, value: string): Promise<boolean>; remove(name: string): Promise<boolean> } {
    const store = this.parts.secretStore;
    return { names: () => store.names(), set: (n, v) => store.set(n, v), remove: (n) => store.remove(n) };
  }

  activations(query: ActivationQuery): Promise<ActivationPage> {
    return this.parts.activationLog.query(query);
  }

  async activation(id: string): Promise<ActivationRecord> {
    const rec = await this.parts.activationLog.get(id);
    if (!rec) throw new LivelyError('LC_NOT_FOUND', `no activation record "${id}" (unknown, or past retention)`);
    return rec;
  }

  /** Fires the events of a recorded activation again with its stored input. */
  async rerun(id: string, wait: boolean): Promise<HttpTriggerReply> {
    if (this.parts.stopping()) throw new LivelyError('LC_SHUTTING_DOWN');
    const rec = await this.activation(id);
    if (!rec.input) {
      throw new LivelyError('LC_NOT_RERUNNABLE', `activation "${id}" cannot be rerun: its input was not kept (inputs are kept for failed activations and the first ok ones of each batch)`);
    }
    if (rec.events.length === 0) throw new LivelyError('LC_NOT_RERUNNABLE', `activation "${id}" fired no events, so there is nothing to rerun`);
    const fired = this.parts.firing.rerun(rec.input, rec.events, id);
    const reply: HttpTriggerReply = { activation: fired.activation, events: fired.events, workers: fired.workers };
    if (wait) reply.outcomes = await fired.done;
    else fired.done.catch(() => undefined);
    return reply;
  }

  /** Loaded workers that cannot run: no dispatcher for their type, or what their dispatcher says. */
  private workerProblems(): Array<{ id: string; code: string; reason: string }> {
    const out: Array<{ id: string; code: string; reason: string }> = [];
    for (const spec of this.parts.registry.specs()) {
      const d = this.parts.dispatchers.find((x) => x.serves(spec));
      const err = d ? d.problem?.(spec) : new LivelyError('LC_UNKNOWN_TYPE', `no dispatcher runs type "${spec.type}"`);
      if (err) out.push({ id: spec.id, code: (err as LivelyError).code ?? 'LC_WORKER_ERROR', reason: err.message });
    }
    return out;
  }

  async metrics(): Promise<string> {
    const p = this.parts;
    return renderMetrics({
      firing: p.firing, catalog: p.catalog, log: p.activationLog,
      dispatchers: p.dispatchers.map((d) => d.stats()), activations: p.activationMetrics, feeds: p.changesTriggers,
      schedules: p.scheduleTriggers.stats(), anomalies: p.anomalies.counts,
    });
  }
}
