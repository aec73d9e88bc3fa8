/**
 * The composition root: store → databases → event catalog and worker registry (both
 * live on `_changes`) → dispatchers → firing → HTTP server. Nothing else wires parts together.
 */
import path from 'node:path';
import type { Config } from './config/index.ts';
import { describeConfig } from './config/index.ts';
import { describeError } from './shared/errors.ts';
import type { Logger } from './shared/logger.ts';
import { silentLogger } from './shared/logger.ts';
import { EmbeddedStore } from './store/embedded/supervisor.ts';
import { connect, type DocumentScope, type ServerScope } from './store/couch.ts';
import { initStore } from './store/init.ts';
import type { ChangesFeed } from './store/feed.ts';
import { ActivationLog } from './activations/recorder.ts';
import { WorkerGate } from './workers/gate.ts';
import { WorkerRegistry } from './workers/registry.ts';
import type { Dispatcher } from './workers/dispatcher.ts';
import { ThreadDispatcher } from './workers/dispatch/thread.ts';
import { ProcessDispatcher } from './workers/dispatch/process.ts';
import { IsolateDispatcher } from './workers/dispatch/isolate.ts';
import { Bundler } from './workers/bundler.ts';
import { createLivelyServer } from './server/http.ts';
import { createConsoleRoutes, type ConsoleRoutes } from './server/console.ts';
import { EventCatalog } from './core/event-catalog.ts';
import { Firing } from './core/firing.ts';
import { RuntimeFirer } from './core/runtime-firer.ts';
import { followEvents, followWorkers } from './core/followers.ts';
import { DurableJournal } from './core/durable.ts';
import { instanceName } from './core/durable-instance.ts';
import { createAuthorizer, type Authorizer } from './core/auth.ts';
import { createWorkerCouchAccess } from './core/worker-credentials.ts';
import { SecretStore } from './core/secrets.ts';
import { lockDataDir, resolveRunAs } from './workers/run-as.ts';
import { ActivationMetrics } from './core/metrics.ts';
import { redactingActivations, teeActivations } from './core/activation-sink.ts';
import { deploySampleIfEmpty } from './core/sample.ts';
import { ChangesTriggers } from './triggers/changes.ts';
import { ScheduleTriggers, systemClock, type Clock } from './triggers/schedule.ts';
import { TickClaims } from './triggers/ticks.ts';
import { Anomalies } from './triggers/anomalies.ts';
import { StateCompactor, placement, type Placement } from './store/state-db.ts';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { settledWithin } from './shared/settle.ts';

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

export class Runtime {
  readonly config: Readonly<Config>;
  readonly logger: Logger;
  store?: EmbeddedStore;
  couchUrl = '';
  nano!: ServerScope;
  /** the state database holds documents of several shapes (leases, claims, checkpoints, heartbeats). */
  db!: { events: Db; workers: Db; logs: DocumentScope<unknown> };
  readonly catalog = new EventCatalog();
  registry!: WorkerRegistry;
  dispatchers: Dispatcher[] = [];
  isolates!: IsolateDispatcher;
  firing!: Firing;
  /** what the HTTP server asks of this runtime (src/core/runtime-firer.ts). */
  firer!: RuntimeFirer;
  activationLog!: ActivationLog;
  /** per-event and per-worker figures for /_lively/metrics, fed by the activation records. */
  readonly activationMetrics = new ActivationMetrics();
  /** admission in front of the dispatchers: per worker, what runs and what waits. */
  gate!: WorkerGate;
  journal!: DurableJournal;
  /** `<prefix>secrets`, held in memory (src/core/secrets.ts). */
  secretStore!: SecretStore;
  private feeds: ChangesFeed[] = [];
  changesTriggers?: ChangesTriggers;
  private scheduleTriggers?: ScheduleTriggers;
  /** state no runtime could have written, found and refused (leases, claims, checkpoints). */
  anomalies!: Anomalies;
  private stateCompactor?: StateCompactor;
  private server?: ReturnType<typeof createLivelyServer>;
  /** who is calling (core/auth.ts): the console asks it who is signed in. */
  authorizer!: Authorizer;
  /** the web console's routes and live feed (server/console.ts). */
  console!: ConsoleRoutes;
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
      this.store = new EmbeddedStore({ dataDir: config.dataDir, memory: config.embeddedMemory, logger, signup: config.signup, sync: config.storeSync });
      this.store.on('restart', () => logger.warn('embedded store restarted; feeds resume'));
      await this.store.start();
      this.couchUrl = this.store.url;
    }
    this.nano = connect(this.couchUrl);
    await initStore(this.nano, { prefix: config.dbPrefix, writerRole: config.writerRole });
    const p = config.dbPrefix;
    this.db = { events: this.nano.use(`${p}events`), workers: this.nano.use(`${p}workers`), logs: this.nano.use(`${p}logs`) };
    this.anomalies = new Anomalies(logger);
    this.secretStore = new SecretStore(this.nano.use(`${p}secrets`), logger);
    // three reads of different databases (and the sample app's first write): side by side
    const [statePlacement] = await Promise.all([
      placement(this.nano, `${p}logs`).catch((err): Placement => ({ nodes: [], copies: 0, warning: `placement unknown: ${describeError(err)}` })),
      this.secretStore.start(),
      config.sample ? deploySampleIfEmpty(this.db.events, this.db.workers, logger) : undefined,
    ]);
    if (statePlacement.warning) logger.error(statePlacement.warning);
    const stateCompactor = new StateCompactor(this.nano, `${p}logs`, logger, config.stateCompactMs);
    this.stateCompactor = stateCompactor;
    stateCompactor.start();
    this.registry = new WorkerRegistry(this.db.workers, config);
    this.feeds.push(followWorkers(this.db.workers, this.registry, () => this.dispatchers, logger));

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
    this.authorizer = auth;
    this.console = createConsoleRoutes(this);
    const consoleFeed = redactingActivations(this.console.feed);
    this.journal = new DurableJournal({ server: this.nano, prefix: p, instance: instanceName(config.dataDir), heartbeats: this.db.logs, logger });
    this.firing = new Firing({
      catalog: this.catalog,
      registry: this.registry,
      gate: this.gate = new WorkerGate(config.maxQueue, config.maxWorkerQueue),
      dispatchers: this.dispatchers,
      // Without records (LIVELY_LOG_RECORDS=0) the metrics still see every activation.
      log: teeActivations(config.logRecords ? [redactingActivations(this.activationLog), this.activationMetrics, consoleFeed] : [this.activationMetrics, consoleFeed], logger),
      logger,
      maxChainDepth: config.maxChainDepth,
      responseLimit: config.responseLimit,
      authorize: auth.authorizeEvent,
      journal: this.journal,
      secrets: (workerId, names) => this.secretStore.resolve(workerId, names),
    });
    const { changes, schedule } = this.wireEventTriggers();
    this.feeds.push(await followEvents(this.db.events, this.catalog, logger));

    this.firer = new RuntimeFirer({
      config, nano: this.nano, store: this.store, catalog: this.catalog, registry: this.registry, firing: this.firing,
      dispatchers: this.dispatchers, isolates: this.isolates, activationLog: this.activationLog, activationMetrics: this.activationMetrics,
      secretStore: this.secretStore, journal: this.journal, anomalies: this.anomalies, changesTriggers: changes, scheduleTriggers: schedule,
      statePlacement, stateCompactor,
      url: () => this.url, stopping: () => this.stopping,
    });
    this.server = createLivelyServer({ config, firer: this.firer, couchUrl: this.couchUrl, logger, authorizeAdmin: auth.authorizeAdmin, console: this.console });
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
  private wireEventTriggers(): { changes: ChangesTriggers; schedule: ScheduleTriggers } {
    const { logger, config } = this;
    // this runtime's name in lease and tick documents shared with other runtimes
    const instance = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    const changes = new ChangesTriggers({
      server: this.nano,
      checkpoints: this.db.logs,
      logger,
      instance,
      anomalies: this.anomalies,
      leaseMs: config.leaseMs,
      concurrency: config.changesConcurrency,
      page: config.changesPage,
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
    const ticks = new TickClaims(this.db.logs, instance, this.anomalies, () => (this.opts.clock ?? systemClock).now());
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
    return { changes, schedule };
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
    const ticksClaimed = this.scheduleTriggers?.close();
    const compactorStopped = this.stateCompactor?.stop();
    const triggersStopped = this.changesTriggers?.close(Math.max(0, until - Date.now()));
    // a tick claimed before the stop still runs: its claim settles first, then it is in flight
    await settledWithin([ticksClaimed], until - Date.now());
    while (this.firing && this.firing.inFlight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    await Promise.all(this.dispatchers.map((d) => d.close(Math.max(0, until - Date.now())).catch(() => undefined)));
    logger.debug('stopping: dispatchers closed');
    await triggersStopped;
    logger.debug('stopping: changes triggers stopped');
    await Promise.all(this.feeds.map((f, i) => f.stop().then(() => logger.debug('stopping: feed stopped', { i }))));
    logger.debug('stopping: feeds stopped');
    await this.journal?.close();
    await compactorStopped;
    await this.secretStore?.stop();
    await this.activationLog?.close().catch(() => undefined);
    logger.debug('stopping: activation log flushed');
    await this.store?.stop();
    logger.debug('stopped');
  }

}
