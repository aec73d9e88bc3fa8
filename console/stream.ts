/**
 * The console's one live connection: server-sent events from `/_lively/stream`. The runtime
 * sends the last minutes of figures first (`history`), a point a second (`tick`) and batches
 * of finished activations (`activations`); pages subscribe and unsubscribe as they open and close.
 */
import { kSignIn } from './dom.ts';

export interface Point { t: number; triggers: number; errors: number; p50: number | null; p99: number | null; queued: number; inFlight: number; warm: number; store: number }
export interface Summary { activation: string; events: string[]; trigger: string; path?: string; method?: string; started: number; durationMs: number; status: string; workers: Array<{ worker: string; status: string }>; rerunOf?: string }
export interface Batch { activations: Summary[]; skipped: number }

type Listener<T> = (data: T) => void;

export class LiveStream {
  private source?: EventSource;
  readonly history: Point[] = [];
  private readonly ticks = new Set<Listener<Point>>();
  private readonly batches = new Set<Listener<Batch>>();
  private readonly states = new Set<Listener<boolean>>();
  connected = false;

  open(): void {
    const es = new EventSource('/_lively/stream');
    this.source = es;
    es.addEventListener('open', () => this.setConnected(true));
    es.addEventListener('history', (e) => {
      this.history.length = 0;
      this.history.push(...JSON.parse((e as MessageEvent).data) as Point[]);
      for (const f of this.ticks) f(this.history[this.history.length - 1]!);
    });
    es.addEventListener('tick', (e) => {
      const p = JSON.parse((e as MessageEvent).data) as Point;
      this.history.push(p);
      if (this.history.length > 600) this.history.shift();
      for (const f of this.ticks) f(p);
    });
    es.addEventListener('activations', (e) => {
      const b = JSON.parse((e as MessageEvent).data) as Batch;
      for (const f of this.batches) f(b);
    });
    es.addEventListener('error', () => {
      this.setConnected(false);
      // The browser reconnects by itself; a session that ended cannot, so ask why.
      fetch('/_lively/console/me', { credentials: 'same-origin' }).then((r) => {
        if (r.status === 401 || r.status === 403) location.assign(kSignIn);
      }, () => undefined);
    });
  }

  private setConnected(v: boolean): void {
    if (this.connected === v) return;
    this.connected = v;
    for (const f of this.states) f(v);
  }

  onTick(f: Listener<Point>): () => void { this.ticks.add(f); return () => this.ticks.delete(f); }
  onBatch(f: Listener<Batch>): () => void { this.batches.add(f); return () => this.batches.delete(f); }
  onState(f: Listener<boolean>): () => void { this.states.add(f); return () => this.states.delete(f); }

  close(): void { this.source?.close(); }
}
