/**
 * The composition root: store → databases → event catalog and worker registry (both
 * live on `_changes`) → dispatchers → firing → HTTP server. Nothing else wires parts together.
 */
import path from 'node:path';
import type { DocumentScope, ServerScope } from 'nano';
import type { Config } from './config/index.ts';
import { describeConfig } from './config/index.ts';
import { LivelyError, describeError } from './shared/errors.ts';
import type { Logger } from './shared/logger.ts';
import { silentLogger } from './shared/logger.ts';
import { EmbeddedStore } from './store/embedded/supervisor.ts';
import { connect } from './store/couch.ts';
import { initStore } from './store/init.ts';
import { ChangesFeed } from './store/feed.ts';
import { ActivationLog, type ActivationRecord } from './activations/recorder.ts';
import type { ActivationPage, ActivationQuery } from './activations/reader.ts';
import { WorkerGate } from './workers/gate.ts';
import { WorkerRegistry } from './workers/registry.ts';
import { typedQuery } from './server/trigger.ts';
import type { Dispatcher } from './workers/dispatcher.ts';
import { ThreadDispatcher } from './workers/dispatch/thread.ts';
import { ProcessDispatcher } from './workers/dispatch/process.ts';
import { IsolateDispatcher } from './workers/dispatch/isolate.ts';
import { Bundler } from './workers/bundler.ts';
import { createLivelyServer } from './server/http.ts';
import type { EventFirer, HttpTriggerReply, HttpTriggerRequest } from './server/firer.ts';
import { EventCatalog, type ChangeRow } from './core/event-catalog.ts';
import { Firing, type Fired } from './core/firing.ts';
import { corsHeaders } from './server/cors.ts';
import { DurableJournal } from './core/durable.ts';
import { instanceName } from './core/durable-instance.ts';
import { createAuthorizer } from './core/auth.ts';
import { createWorkerCouchAccess } from './core/worker-credentials.ts';
import { SecretStore } from './core/secrets.ts';
import { lockDataDir, resolveRunAs } from './workers/run-as.ts';
import { ActivationMetrics, renderMetrics } from './core/metrics.ts';
import { redactingActivations, teeActivations } from './core/activation-sink.ts';
import { firedReply, optionsReply } from './core/endpoint.ts';
import { optionsFor } from './core/options.ts';
import { deploySampleIfEmpty } from './core/sample.ts';
import { ChangesTriggers } from './triggers/changes.ts';
import { ScheduleTriggers, systemClock, type Clock } from './triggers/schedule.ts';
import { TickClaims } from './triggers/ticks.ts';
import { Anomalies } from './triggers/anomalies.ts';
import { StateCompactor, placement, type Placement } from './store/state-db.ts';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

type Db = DocumentScope<Record<string, unknown>>;

export interface RuntimeOptions {
  config: Readonly<Config>;
  logger?: Logger;
  /** extra dispatchers tried before the built-in ones (tests, embedders). */
  dispatchers?: Dispatcher[];
  /** the schedule triggers' clock (specs tick it by hand). */
  clock?: Clock;
  /** the isolate engine package instead of the running Node's (specs name one that is missing). */
  isolateEngine?: string;
  /**
   * The embedded store, already starting (the CLI starts it while this module loads); without
   * it, and without `couchUrl`, start() starts one. Either way stop() stops it.
   */
  store?: Promise<EmbeddedStore>;
}

export class Runtime implements EventFirer {
  readonly config: Readonly<Config>;
  readonly logger: Logger;
  store?: EmbeddedStore;
  couchUrl = '';
  nano!: ServerScope;
  db!: { events: Db; workers: Db; logs: Db };
  readonly catalog = new EventCatalog();
  registry!: WorkerRegistry;
  dispatchers: Dispatcher[] = [];
  isolates!: IsolateDispatcher;
  firing!: Firing;
  activationLog!: ActivationLog;
  /** per-event and per-worker figures for /_lively/metrics, fed by the activation records. */
  readonly activationMetrics = new ActivationMetrics();
  journal!: DurableJournal;
  /** `<prefix>secrets`, held in memory (src/core/secrets.ts). */
  secretStore!: SecretStore;
  private feeds: ChangesFeed[] = [];
  changesTriggers?: ChangesTriggers;
  private scheduleTriggers?: ScheduleTriggers;
  /** state no runtime could have written, found and refused (leases, claims, checkpoints). */
  anomalies!: Anomalies;
  private stateCompactor?: StateCompactor;
  private statePlacement?: Placement;
  private server?: ReturnType<typeof createLivelyServer>;
  private stopping = false;
  port = 0;

  constructor(private readonly opts: RuntimeOptions) {
    this.config = opts.config;
    this.logger = opts.logger ?? silentLogger;
  }

  /** The runtime's own origin: triggers under /_events, everything else proxied to CouchDB. */
  get url(): string {
    return `http://${this.config.host.includes(':') ? `[${this.config.host}]` : this.config.host}:${this.port}`;
  }

  async start(): Promise<this> {
    const { config, logger } = this;
    logger.info('livelycouch starting', describeConfig(config));
    const runAs = resolveRunAs(config.workerUser);
    // before anything is written into it: process workers must not read the data directory
    if (runAs) lockDataDir(config.dataDir);
    if (config.couchUrl) {
      this.couchUrl = config.couchUrl;
    } else if (this.opts.store) {
      this.store = await this.opts.store;
      this.store.on('restart', () => logger.warn('embedded store restarted; feeds resume'));
      this.couchUrl = this.store.url;
    } else {
      this.store = new EmbeddedStore({ dataDir: config.dataDir, memory: config.embeddedMemory, logger, signup: config.signup });
      this.store.on('restart', () => logger.warn('embedded store restarted; feeds resume'));
      await this.store.start();
      this.couchUrl = this.store.url;
    }
    this.nano = connect(this.couchUrl);
    await initStore(this.nano, { prefix: config.dbPrefix, writerRole: config.writerRole });
    const p = config.dbPrefix;
    this.db = { events: this.nano.use(`${p}events`), workers: this.nano.use(`${p}workers`), logs: this.nano.use(`${p}logs`) };
    this.anomalies = new Anomalies(logger);
    this.statePlacement = await placement(this.nano, `${p}logs`).catch((err) => ({ nodes: [], copies: 0, warning: `placement unknown: ${describeError(err)}` }));
    if (this.statePlacement.warning) logger.error(this.statePlacement.warning);
    this.stateCompactor = new StateCompactor(this.nano, `${p}logs`, logger, config.stateCompactMs);
    this.stateCompactor.start();
    this.secretStore = new SecretStore(this.nano.use(`${p}secrets`), logger);
    await this.secretStore.start();

    if (config.sample) await deploySampleIfEmpty(this.db.events, this.db.workers, logger);
    this.registry = new WorkerRegistry(this.db.workers, config);
    this.followWorkers();

    const cacheDir = path.join(config.dataDir, 'cache');
    const bundler = new Bundler();
    this.isolates = new IsolateDispatcher({ cacheDir, logger, bundler, ...(this.opts.isolateEngine ? { engine: this.opts.isolateEngine } : {}) });
    // Said at start, not at the first isolate worker's failure.
    const engine = this.isolates.engine();
    if (engine.error) logger.warn(engine.error.message, { code: engine.error.code });
    else logger.debug('isolate engine', { package: engine.package, isolatedVm: engine.version, node: engine.node });
    const threads = new ThreadDispatcher({ threads: config.threads, cacheDir, couchUrl: this.couchUrl, logger, bundler });
    const processes = new ProcessDispatcher({ interpreters: config.interpreters, dataDir: config.dataDir, couchUrl: this.couchUrl, couchAccess: createWorkerCouchAccess(this.nano, this.couchUrl), logger, runAs,
      // A body as a JSON string: escapes may double it; base64 adds a third.
      maxResultLine: 2 * config.responseLimit + 64 * 1024 });
    // a process keeps the environment it started with: one whose secret changed is replaced
    this.secretStore.onChange = (names) => {
      for (const spec of this.registry.specs()) {
        if (spec.secrets?.some((n) => names.includes(n))) processes.retire(spec.id).catch((err) => logger.warn('retiring worker failed', { worker: spec.id, error: describeError(err) }));
      }
    };
    // The thread runtime is built now, so the first trigger does not pay for it.
    await threads.start();
    this.dispatchers = [
      ...(this.opts.dispatchers ?? []),
      threads,
      this.isolates,
      processes,
    ];
    this.activationLog = new ActivationLog(this.nano, { prefix: p, retentionDays: config.logRetentionDays, maxRecords: config.logMaxRecords, logger });
    this.activationLog.start();
    const auth = createAuthorizer(this.couchUrl);
    this.journal = new DurableJournal({ server: this.nano, prefix: p, instance: instanceName(config.dataDir), heartbeats: this.db.logs as DocumentScope<unknown>, logger });
    this.firing = new Firing({
      catalog: this.catalog,
      registry: this.registry,
      gate: new WorkerGate(config.maxQueue, config.maxWorkerQueue),
      dispatchers: this.dispatchers,
      // Without records (LIVELY_LOG_RECORDS=0) the metrics still see every activation.
      log: teeActivations(config.logRecords ? [redactingActivations(this.activationLog), this.activationMetrics] : [this.activationMetrics], logger),
      logger,
      maxChainDepth: config.maxChainDepth,
      responseLimit: config.responseLimit,
      authorize: auth.authorizeEvent,
      journal: this.journal,
      secrets: (workerId, names) => this.secretStore.resolve(workerId, names),
    });
    this.wireEventTriggers();
    await this.followEvents();

    this.server = createLivelyServer({ config, firer: this, couchUrl: this.couchUrl, logger, authorizeAdmin: auth.authorizeAdmin });
    const { port } = await this.server.listen();
    this.port = port;
    // The catalog is loaded: durable activations a crash left unfinished run again.
    await this.journal.start((entry, ref) => this.firing.recover(entry, ref));
    // and again for what the start wrote into it (the instance name, the bundle cache)
    if (runAs) lockDataDir(config.dataDir);
    logger.info('livelycouch listening', { url: this.url, events: this.catalog.matcher.size });
    this.firing.fireInternal('lively', '/lively/started', { url: this.url }, 0);
    return this;
  }

  /** Changes and schedule triggers follow the catalog: each event is reconciled as it changes. */
  private wireEventTriggers(): void {
    const { logger, config } = this;
    // this runtime's name in lease and tick documents shared with other runtimes
    const instance = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    const changes = new ChangesTriggers({
      server: this.nano,
      checkpoints: this.db.logs as DocumentScope<unknown>,
      logger,
      instance,
      anomalies: this.anomalies,
      leaseMs: config.leaseMs,
      concurrency: config.changesConcurrency,
      // a waiting poll ends at least once a lease period, so a deleted database is noticed as soon
      pollTimeout: Math.min(30_000, Math.max(1_000, config.leaseMs)),
      fire: async (event, change, db) => {
        const params: Record<string, unknown> = { db, id: change.id, seq: change.seq, deleted: change.deleted === true };
        if (change.doc) params.doc = change.doc;
        // Loaded first, so that a busy worker refuses the change before it starts (the trigger
        // then waits for room): a worker loaded during the firing would record the refusal as
        // the change's outcome instead, and the change would count as done without running.
        await Promise.all(event.workers.map((w) => this.registry.get(w.name).catch(() => undefined)));
        await this.firing.fireEvent(event, { trigger: 'changes', method: 'POST', path: `/${db}/_changes`, params, change, depth: 0 }).done;
      },
    });
    const ticks = new TickClaims(this.db.logs as DocumentScope<unknown>, instance, this.anomalies, () => (this.opts.clock ?? systemClock).now());
    const schedule = new ScheduleTriggers({
      clock: this.opts.clock,
      logger,
      claim: (key, at) => ticks.claim(key, at),
      last: (key) => ticks.last(key),
      // a tick the dispatcher refuses throws: the scheduler skips and counts it
      fire: (event, tick) => {
        this.firing.fireEvent(event, { trigger: 'schedule', method: 'POST', path: '/_schedule', params: { ...tick }, tick, depth: 0 }).done.catch(() => undefined);
      },
    });
    this.changesTriggers = changes;
    this.scheduleTriggers = schedule;
    this.catalog.onEvent = (id, event) => {
      schedule.set(id, event);
      changes.set(id, event).catch((err) => logger.warn('changes trigger update failed', { event: id, error: describeError(err) }));
    };
  }

  /** Loads every event, then follows the feed from where the load ended. */
  private async followEvents(): Promise<void> {
    const first = await this.db.events.changes({ since: '0', include_docs: true } as never);
    this.catalog.apply(first.results as unknown as ChangeRow[]);
    const feed = new ChangesFeed(this.db.events as DocumentScope<unknown>, {
      since: String(first.last_seq),
      includeDocs: true,
      logger: this.logger,
      onBatch: async (rows) => { this.catalog.apply(rows as unknown as ChangeRow[]); },
    });
    feed.on('error', (err: unknown) => this.logger.error('events feed stopped', { error: describeError(err) }));
    feed.start();
    this.feeds.push(feed);
  }

  private followWorkers(): void {
    const feed = new ChangesFeed(this.db.workers as DocumentScope<unknown>, {
      since: 'now',
      includeDocs: false,
      logger: this.logger,
      onBatch: async (rows) => {
        for (const row of rows as unknown as Array<{ id: string; deleted?: boolean; changes: Array<{ rev: string }> }>) {
          const rev = row.deleted ? undefined : row.changes[0]?.rev;
          this.registry.changed(row.id, rev);
          // Retire in every dispatcher: instances of other revisions finish, then get stdin end.
          await Promise.all(this.dispatchers.map((d) => d.retire(row.id, rev).catch((err) =>
            this.logger.warn('retiring worker failed', { worker: row.id, error: describeError(err) }))));
        }
      },
    });
    feed.on('error', (err: unknown) => this.logger.error('workers feed stopped', { error: describeError(err) }));
    feed.start();
    this.feeds.push(feed);
  }

  /**
   * Speed: answers synchronously (and throws synchronously) when the firing does and the
   * caller does not wait for the outcomes; a promise otherwise.
   */
  fireHttp(req: HttpTriggerRequest): HttpTriggerReply | Promise<HttpTriggerReply> {
    if (this.stopping) throw new LivelyError('LC_SHUTTING_DOWN');
    if (req.method === 'OPTIONS') {
      const answer = optionsFor(this.catalog, req.path, req.path.slice(1));
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
      fired = this.firing.fire(
        { trigger: 'http', method: req.method, path: req.path, params, request: { query: req.query, headers: req.headers, body }, depth: 0 },
        req.path.slice(1),
      );
    } catch (err) {
      throw this.withCors(err, req);
    }
    if (fired instanceof Promise) return fired.then((f) => firedReply(f, req, this.config.responseLimit), (err) => { throw this.withCors(err, req); });
    return firedReply(fired, req, this.config.responseLimit);
  }

  /**
   * A refusal before anything ran (405, 401/403, a full queue's 503) still carries the CORS
   * headers of the path's event, so that a page on another origin can read why.
   */
  private withCors(err: unknown, req: HttpTriggerRequest): unknown {
    const origin = req.headers.origin;
    if (!(err instanceof LivelyError) || origin === undefined) return err;
    const routes = this.catalog.matcher.routesFor(req.path);
    const byId = routes.length === 0 ? this.catalog.get(req.path.slice(1)) : undefined;
    const cors = byId?.cors ?? routes.find((r) => r.event.cors !== undefined)?.event.cors;
    const headers = cors && corsHeaders(cors, Array.isArray(origin) ? origin[0] : origin);
    if (headers) err.headers = { ...err.headers, ...headers };
    return err;
  }

  async health(): Promise<{ ok: boolean; store: boolean }> {
    let store = false;
    try {
      await this.nano.info();
      store = true;
    } catch { /* reported below */ }
    return { ok: store && !this.stopping, store };
  }

  async status(): Promise<Record<string, unknown>> {
    return {
      ok: !this.stopping,
      url: this.url,
      store: this.store ? { embedded: true, pid: this.store.pid } : { embedded: false },
      events: { loaded: this.catalog.matcher.size, invalid: this.catalog.invalid() },
      workers: { loaded: this.registry.loaded(), invalid: this.registry.invalid(), problems: this.workerProblems() },
      dispatchers: this.dispatchers.map((d) => d.stats()),
      isolateEngine: this.isolates.engine(),
      feeds: this.changesTriggers?.stats() ?? [],
      schedules: this.scheduleTriggers?.stats() ?? { fired: 0, lost: 0, skipped: 0, failed: 0 },
      state: { db: `${this.config.dbPrefix}logs`, ...this.statePlacement, size: this.stateCompactor?.lastSize, compactions: this.stateCompactor?.compactions ?? 0 },
      anomalies: this.anomalies.stats(),
      activations: { fired: this.firing.fired, completed: this.firing.completed, inFlight: this.firing.inFlight, waiting: this.firing.queued(), outcomes: this.firing.outcomes, logged: this.activationLog.written, dropped: this.activationLog.dropped },
      retries: { waiting: this.firing.retrying },
      durable: this.journal.stats,
    };
  }

  get secrets(): { names(): string[]; set(name: string, value: string): Promise<boolean>; remove(name: string): Promise<boolean> } {
    const store = this.secretStore;
    return { names: () => store.names(), set: (n, v) => store.set(n, v), remove: (n) => store.remove(n) };
  }

  activations(query: ActivationQuery): Promise<ActivationPage> {
    return this.activationLog.query(query);
  }

  async activation(id: string): Promise<ActivationRecord> {
    const rec = await this.activationLog.get(id);
    if (!rec) throw new LivelyError('LC_NOT_FOUND', `no activation record "${id}" (unknown, or past retention)`);
    return rec;
  }

  /** Fires the events of a recorded activation again with its stored input. */
  async rerun(id: string, wait: boolean): Promise<HttpTriggerReply> {
    if (this.stopping) throw new LivelyError('LC_SHUTTING_DOWN');
    const rec = await this.activation(id);
    if (!rec.input) {
      throw new LivelyError('LC_NOT_RERUNNABLE', `activation "${id}" cannot be rerun: its input was not kept (inputs are kept for failed activations and the first ok ones of each batch)`);
    }
    if (rec.events.length === 0) throw new LivelyError('LC_NOT_RERUNNABLE', `activation "${id}" fired no events, so there is nothing to rerun`);
    const fired = this.firing.rerun(rec.input, rec.events, id);
    const reply: HttpTriggerReply = { activation: fired.activation, events: fired.events, workers: fired.workers };
    if (wait) reply.outcomes = await fired.done;
    else fired.done.catch(() => undefined);
    return reply;
  }

  /** Loaded workers that cannot run: no dispatcher for their type, or what their dispatcher says. */
  private workerProblems(): Array<{ id: string; code: string; reason: string }> {
    const out: Array<{ id: string; code: string; reason: string }> = [];
    for (const spec of this.registry.specs()) {
      const d = this.dispatchers.find((x) => x.serves(spec));
      const err = d ? d.problem?.(spec) : new LivelyError('LC_UNKNOWN_TYPE', `no dispatcher runs type "${spec.type}"`);
      if (err) out.push({ id: spec.id, code: (err as LivelyError).code ?? 'LC_WORKER_ERROR', reason: err.message });
    }
    return out;
  }

  async metrics(): Promise<string> {
    return renderMetrics({
      firing: this.firing, catalog: this.catalog, log: this.activationLog,
      dispatchers: this.dispatchers.map((d) => d.stats()), activations: this.activationMetrics, feeds: this.changesTriggers,
      schedules: this.scheduleTriggers?.stats(), anomalies: this.anomalies?.counts,
    });
  }

  /** Stops taking triggers, lets in-flight work finish up to the deadline, then stops everything. */
  async stop(deadlineMs = 10_000): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const { logger } = this;
    const until = Date.now() + deadlineMs;
    await this.server?.close();
    logger.debug('stopping: server closed');
    this.firing?.close();
    // no new ticks or changes; a changes batch in flight gets until the deadline to finish
    this.scheduleTriggers?.close();
    this.stateCompactor?.stop();
    const triggersStopped = this.changesTriggers?.close(Math.max(0, until - Date.now()));
    while (this.firing && this.firing.inFlight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    await Promise.all(this.dispatchers.map((d) => d.close(Math.max(0, until - Date.now())).catch(() => undefined)));
    logger.debug('stopping: dispatchers closed');
    await triggersStopped;
    logger.debug('stopping: changes triggers stopped');
    await Promise.all(this.feeds.map((f, i) => f.stop().then(() => logger.debug('stopping: feed stopped', { i }))));
    logger.debug('stopping: feeds stopped');
    await this.journal?.close();
    await this.secretStore?.stop();
    await this.activationLog?.close().catch(() => undefined);
    logger.debug('stopping: activation log flushed');
    await this.store?.stop();
    logger.debug('stopped');
  }

}
