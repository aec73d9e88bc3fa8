/**
 * Retries of a worker entry with a retry policy: it runs again after an error or timeout, up
 * to its attempts, with a backoff that doubles after each failure and during which it holds no
 * gate slot. The outcome is the last attempt's, with `attempts` and a log line per failure.
 */
import type { LogLine, WorkerOutcome } from '../shared/message.ts';
import type { EventWorkerRef } from '../events/model.ts';

export class Retries {
  /** worker runs waiting out a backoff (they hold no gate slot meanwhile). */
  waiting = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  /** `again` runs one more attempt: admitted afresh, so it takes the worker's current revision. */
  async retried(ref: EventWorkerRef, first: Promise<WorkerOutcome>, again: () => Promise<WorkerOutcome>): Promise<WorkerOutcome> {
    const { attempts, backoffMs } = ref.retry!;
    let outcome = await first;
    let n = 1;
    const notes: LogLine[] = [];
    while (outcome.status !== 'ok' && n < attempts) {
      const delay = backoffMs * 2 ** (n - 1);
      notes.push({ t: Date.now(), level: 'warn', msg: `attempt ${n} of ${attempts} failed (${outcome.status}${outcome.error ? `, ${outcome.error.code}: ${outcome.error.message}` : ''}); retrying in ${delay} ms` });
      await this.backoff(delay);
      n++;
      outcome = await again();
    }
    return { ...outcome, attempts: n, logs: notes.length ? [...notes, ...outcome.logs] : outcome.logs };
  }

  /** Stops waiting retries: their runs are abandoned (a durable one is re-run at the next start). */
  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /** Resolves after `ms`; never, once closed (the runtime is stopping). */
  private backoff(ms: number): Promise<void> {
    this.waiting++;
    return new Promise<void>((resolve) => {
      if (this.closed) return;
      const t = setTimeout(() => {
        this.timers.delete(t);
        this.waiting--;
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }
}
