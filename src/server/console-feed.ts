/**
 * What the web console sees live: a sink of activation records (one of those Firing's records
 * go to) that keeps per-second figures for the Overview charts, per-event and per-worker
 * figures for the Events and Workers pages, and streams activation summaries to the consoles
 * that are open, as server-sent events (`GET /_lively/stream`).
 *
 * The trigger path pays a few increments per record; nothing is serialised per record. While
 * consoles are open, summaries are gathered and sent in one batch every `flushMs`, at most
 * `maxBatch` of them (the rest are counted as `skipped`), so a console costs the runtime a
 * bounded amount of work whatever the trigger rate. A console that cannot keep up (its
 * socket's buffer is full) misses batches instead of growing the runtime's memory.
 *
 * Records reach this sink redacted (runtime.ts wraps it in redactingActivations); summaries
 * carry no inputs, results or logs — the page asks for a record by its id for those.
 */
import type { ServerResponse } from 'node:http';
import type { ActivationRecord } from '../activations/recorder.ts';
import type { ActivationSink } from '../core/activation-sink.ts';

/** One activation as the live stream shows it. */
export interface ActivationSummary {
  activation: string;
  events: string[];
  trigger: string;
  path?: string;
  method?: string;
  started: number;
  durationMs: number;
  status: 'ok' | 'error' | 'timeout' | 'dead';
  workers: Array<{ worker: string; status: string }>;
  rerunOf?: string;
}

/** One second of the Overview charts. */
export interface SecondPoint {
  /** the second, in seconds since the epoch. */
  t: number;
  triggers: number;
  errors: number;
  /** worker-run latency in ms over that second; null when nothing finished. */
  p50: number | null;
  p99: number | null;
  queued: number;
  inFlight: number;
  warm: number;
  /** 1 when the store answered at its last check, 0 when it did not. */
  store: number;
}

/** Figures the feed reads from the runtime once a second. */
export interface FeedGauges {
  queued: number;
  inFlight: number;
  warm: number;
}

export interface ConsoleFeedOptions {
  /** how often a batch of summaries goes to open consoles. */
  flushMs?: number;
  /** summaries per batch; more in one period are counted, not sent. */
  maxBatch?: number;
  /** seconds of history kept for the charts. */
  historySeconds?: number;
  /** distinct events and workers tracked; beyond it new names are not tracked. */
  maxSeries?: number;
}

interface EventFigures { fired: number; errors: number; last: number; lastStatus: string; window: number[] }
interface WorkerFigures { runs: number; errors: number; last: number; lastErrors: Array<{ at: number; activation: string; message: string }> }

const kLatencySamples = 1024;
const kWindowSlots = 6; // 10-second slots: a one-minute rate
const kLastErrors = 5;
/** An SSE comment sent when nothing else was, so that proxies keep the connection. */
const kKeepAliveMs = 15_000;

function statusOf(rec: ActivationRecord): ActivationSummary['status'] {
  if (rec.dead) return 'dead';
  let status: ActivationSummary['status'] = 'ok';
  for (const w of rec.workers) {
    if (w.status === 'error') return 'error';
    if (w.status === 'timeout') status = 'timeout';
  }
  return status;
}

function quantile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export class ConsoleFeed implements ActivationSink {
  private readonly flushMs: number;
  private readonly maxBatch: number;
  private readonly historySeconds: number;
  private readonly maxSeries: number;
  private readonly clients = new Set<ServerResponse>();
  private pending: ActivationSummary[] = [];
  private skipped = 0;
  // the second being counted
  private second = Math.floor(Date.now() / 1000);
  private triggers = 0;
  private errors = 0;
  private latencies = new Float64Array(kLatencySamples);
  private latencyCount = 0;
  private readonly history: SecondPoint[] = [];
  private readonly events = new Map<string, EventFigures>();
  private readonly workers = new Map<string, WorkerFigures>();
  private storeUp = 1;
  private flushTimer?: NodeJS.Timeout;
  private secondTimer?: NodeJS.Timeout;
  private lastSent = Date.now();
  private slotAt = Date.now();

  constructor(private readonly gauges: () => FeedGauges, opts: ConsoleFeedOptions = {}) {
    this.flushMs = opts.flushMs ?? 250;
    this.maxBatch = opts.maxBatch ?? 100;
    this.historySeconds = opts.historySeconds ?? 600;
    this.maxSeries = opts.maxSeries ?? 2_000;
  }

  /** Starts the once-a-second sampling the charts are drawn from. */
  start(): void {
    if (this.secondTimer) return;
    this.secondTimer = setInterval(() => this.closeSecond(), 1000);
    this.secondTimer.unref();
  }

  record(rec: ActivationRecord): void {
    const status = statusOf(rec);
    this.triggers++;
    if (status !== 'ok') this.errors++;
    const ws = rec.workers;
    for (let i = 0; i < ws.length; i++) {
      const w = ws[i]!;
      // A reservoir: past kLatencySamples in a second, later runs replace earlier ones at random.
      const n = this.latencyCount++;
      if (n < kLatencySamples) this.latencies[n] = w.durationMs;
      else {
        const j = Math.floor(Math.random() * (n + 1));
        if (j < kLatencySamples) this.latencies[j] = w.durationMs;
      }
      if (w.worker === '') continue;
      const f = this.workerFigures(w.worker);
      if (f === undefined) continue;
      f.runs++;
      f.last = rec.started;
      if (w.status !== 'ok') {
        f.errors++;
        f.lastErrors.unshift({ at: rec.started, activation: rec.activation, message: w.error?.message ?? w.status });
        if (f.lastErrors.length > kLastErrors) f.lastErrors.pop();
      }
    }
    for (let i = 0; i < rec.events.length; i++) {
      const f = this.eventFigures(rec.events[i]!);
      if (f === undefined) continue;
      f.fired++;
      f.window[0]!++;
      if (status !== 'ok') f.errors++;
      f.last = rec.started;
      f.lastStatus = status;
    }
    if (this.clients.size === 0) return;
    if (this.pending.length >= this.maxBatch) {
      this.skipped++;
      return;
    }
    const summary: ActivationSummary = {
      activation: rec.activation, events: rec.events, trigger: rec.trigger, started: rec.started,
      durationMs: rec.durationMs, status, workers: ws.map((w) => ({ worker: w.worker, status: w.status })),
    };
    if (rec.path !== undefined) summary.path = rec.path;
    if (rec.method !== undefined) summary.method = rec.method;
    if (rec.rerunOf !== undefined) summary.rerunOf = rec.rerunOf;
    this.pending.push(summary);
  }

  private eventFigures(name: string): EventFigures | undefined {
    let f = this.events.get(name);
    if (f === undefined && this.events.size < this.maxSeries) {
      f = { fired: 0, errors: 0, last: 0, lastStatus: '', window: new Array(kWindowSlots).fill(0) };
      this.events.set(name, f);
    }
    return f;
  }

  private workerFigures(name: string): WorkerFigures | undefined {
    let f = this.workers.get(name);
    if (f === undefined && this.workers.size < this.maxSeries) {
      f = { runs: 0, errors: 0, last: 0, lastErrors: [] };
      this.workers.set(name, f);
    }
    return f;
  }

  /** Whether the store answered at its last check (the console's own health probe sets it). */
  set store(up: boolean) { this.storeUp = up ? 1 : 0; }

  private closeSecond(): void {
    const now = Date.now();
    let p50: number | null = null;
    let p99: number | null = null;
    const n = Math.min(this.latencyCount, kLatencySamples);
    if (n > 0) {
      const sorted = this.latencies.slice(0, n).sort();
      p50 = quantile(sorted, 0.5);
      p99 = quantile(sorted, 0.99);
    }
    const g = this.gauges();
    const point: SecondPoint = { t: this.second, triggers: this.triggers, errors: this.errors, p50, p99, queued: g.queued, inFlight: g.inFlight, warm: g.warm, store: this.storeUp };
    this.history.push(point);
    if (this.history.length > this.historySeconds) this.history.shift();
    this.second = Math.floor(now / 1000);
    this.triggers = 0;
    this.errors = 0;
    this.latencyCount = 0;
    if (now - this.slotAt >= 10_000) {
      this.slotAt = now;
      for (const f of this.events.values()) {
        f.window.pop();
        f.window.unshift(0);
      }
    }
    this.send('tick', point);
  }

  /** The last minutes, one point a second, oldest first. */
  points(): SecondPoint[] {
    return this.history.slice();
  }

  /** An event's figures: activations finished, failed, the last one, and a one-minute rate. */
  eventStats(id: string): { fired: number; errors: number; lastFired?: number; lastStatus?: string; perMinute: number } {
    const f = this.events.get(id);
    if (f === undefined) return { fired: 0, errors: 0, perMinute: 0 };
    return { fired: f.fired, errors: f.errors, ...(f.last ? { lastFired: f.last, lastStatus: f.lastStatus } : {}), perMinute: f.window.reduce((a, b) => a + b, 0) };
  }

  workerStats(id: string): { runs: number; errors: number; lastRun?: number; lastErrors: WorkerFigures['lastErrors'] } {
    const f = this.workers.get(id);
    if (f === undefined) return { runs: 0, errors: 0, lastErrors: [] };
    return { runs: f.runs, errors: f.errors, ...(f.last ? { lastRun: f.last } : {}), lastErrors: f.lastErrors.slice() };
  }

  /** Consoles connected to the stream now. */
  get open(): number { return this.clients.size; }

  /** Makes `res` a server-sent event stream: first the history, then ticks and batches. */
  attach(res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    res.write(`event: history\nretry: 2000\ndata: ${JSON.stringify(this.history)}\n\n`);
    this.clients.add(res);
    res.on('close', () => {
      this.clients.delete(res);
      if (this.clients.size === 0) this.stopFlushing();
    });
    if (!this.flushTimer) {
      this.flushTimer = setInterval(() => this.flush(), this.flushMs);
      this.flushTimer.unref();
    }
  }

  private stopFlushing(): void {
    clearInterval(this.flushTimer);
    this.flushTimer = undefined;
    this.pending = [];
    this.skipped = 0;
  }

  private flush(): void {
    if (this.pending.length === 0 && this.skipped === 0) {
      if (Date.now() - this.lastSent > kKeepAliveMs) this.write(': keep-alive\n\n');
      return;
    }
    const batch = { activations: this.pending, skipped: this.skipped };
    this.pending = [];
    this.skipped = 0;
    this.send('activations', batch);
  }

  private send(event: string, data: unknown): void {
    if (this.clients.size === 0) return;
    this.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  private write(text: string): void {
    this.lastSent = Date.now();
    for (const res of this.clients) {
      // a console whose socket is still full from the last batches misses this one
      if (res.writableNeedDrain) continue;
      res.write(text);
    }
  }

  /** Ends every stream (the server is closing) and stops sampling. */
  close(): void {
    clearInterval(this.secondTimer);
    this.secondTimer = undefined;
    for (const res of this.clients) res.end();
    this.clients.clear();
    this.stopFlushing();
  }
}
