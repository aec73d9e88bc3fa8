/**
 * Admission control in front of every dispatcher: at most `concurrency` messages of one
 * worker run at once, at most `queue` wait behind them (the worker's own limit, or
 * `maxWorkerQueue`), and at most `maxQueue` wait in all. Beyond that a message is refused
 * with LC_QUEUE_FULL (HTTP 503) at once, so an overloaded runtime sheds load instead of
 * growing memory.
 */
import { LivelyError } from '../shared/errors.ts';

/** What waits in the gate: a function, or an object whose `admitted()` is called (no closure to make). */
export type Waiter = (() => void) | { admitted(): void };

interface Lane {
  running: number;
  waiting: Waiter[];
  head: number;
}

export class WorkerGate {
  private readonly lanes = new Map<string, Lane>();
  private queued = 0;

  constructor(private readonly maxQueue: number, private readonly maxWorkerQueue: number) {}

  /** Throws LC_QUEUE_FULL synchronously when the message cannot even wait. */
  admit(worker: string, concurrency: number, queue?: number): Promise<void> | undefined {
    if (this.tryAdmit(worker, concurrency, queue)) return undefined; // the fast path makes no promise
    return new Promise<void>((resolve) => this.queue(worker, resolve));
  }

  /**
   * Admits a message at once (true), or says it must wait (false), in which case the caller
   * hands it to queue() right away; throws LC_QUEUE_FULL when it cannot even wait. For callers
   * that would only wait on admit()'s promise to call something: a waiting message then holds
   * that call, not a promise and its reaction too.
   */
  tryAdmit(worker: string, concurrency: number, queue = this.maxWorkerQueue): boolean {
    let lane = this.lanes.get(worker);
    if (!lane) { lane = { running: 0, waiting: [], head: 0 }; this.lanes.set(worker, lane); }
    if (lane.running < concurrency && lane.waiting.length === lane.head) {
      lane.running++;
      return true;
    }
    const depth = lane.waiting.length - lane.head;
    if (depth >= queue) throw new LivelyError('LC_QUEUE_FULL', `worker "${worker}" is busy and its queue is full (${depth} waiting, its limit)`);
    if (this.queued >= this.maxQueue) throw new LivelyError('LC_QUEUE_FULL', `${this.queued} messages waiting in all`);
    return false;
  }

  /** Queues a message tryAdmit() said must wait: `admitted` is called when its turn comes. */
  queue(worker: string, admitted: Waiter): void {
    this.queued++;
    this.lanes.get(worker)!.waiting.push(admitted);
  }

  release(worker: string, concurrency: number): void {
    const lane = this.lanes.get(worker);
    if (!lane) return;
    lane.running--;
    while (lane.running < concurrency && lane.head < lane.waiting.length) {
      const next = lane.waiting[lane.head]!;
      lane.waiting[lane.head++] = undefined as unknown as Waiter;
      this.queued--;
      lane.running++;
      if (typeof next === 'function') next(); else next.admitted();
    }
    if (lane.head > 1024 && lane.head * 2 > lane.waiting.length) {
      lane.waiting = lane.waiting.slice(lane.head);
      lane.head = 0;
    }
    if (lane.running === 0 && lane.head === lane.waiting.length) this.lanes.delete(worker);
  }

  /** Messages running and waiting for one worker (both 0 when it has none). */
  lane(worker: string): { running: number; waiting: number } {
    const lane = this.lanes.get(worker);
    return lane ? { running: lane.running, waiting: lane.waiting.length - lane.head } : { running: 0, waiting: 0 };
  }

  stats(): { queued: number; busyWorkers: number } {
    return { queued: this.queued, busyWorkers: this.lanes.size };
  }
}
