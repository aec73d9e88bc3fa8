/**
 * A dispatcher that records each message it is handed and answers `{ result: { echoed } }`.
 * It stands in for the execution backends where a spec is about what reaches a worker
 * (matching, arguments, the envelope), not about running code.
 */
import type { DispatchContext, Dispatcher, DispatcherStats } from '../../src/workers/dispatcher.ts';
import type { WorkerMessage, WorkerOutcome } from '../../src/shared/message.ts';
import type { WorkerSpec } from '../../src/workers/revision.ts';

export class RecordingDispatcher implements Dispatcher {
  readonly name = 'recording';
  readonly messages: WorkerMessage[] = [];
  private waiters: Array<{ n: number; resolve: () => void }> = [];

  constructor(private readonly types: readonly string[] = ['node']) {}

  serves(spec: WorkerSpec): boolean {
    return this.types.includes(spec.type);
  }

  async dispatch(ctx: DispatchContext): Promise<WorkerOutcome> {
    this.messages.push(ctx.message);
    this.waiters = this.waiters.filter((w) => (this.messages.length >= w.n ? (w.resolve(), false) : true));
    return { worker: ctx.spec.id, status: 'ok', result: { echoed: ctx.message.arguments }, logs: [], durationMs: 0 };
  }

  /** Resolves once `n` messages in all have arrived. */
  received(n: number): Promise<void> {
    if (this.messages.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }

  async retire(): Promise<void> {}
  stats(): DispatcherStats { return { name: this.name, warm: 0, inFlight: 0, received: this.messages.length }; }
  async close(): Promise<void> {}
}
