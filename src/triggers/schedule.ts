/**
 * Schedule triggers: `{ "every": "1m" }` or `{ "cron": "<five fields>" }` (UTC).
 * Tick times are absolute (multiples of `every` since the epoch, or cron minutes), so
 * several runtimes on one CouchDB agree on them; each tick is claimed by writing a
 * document whose id names it — the runtime whose write wins (the others get 409) fires.
 * The clock is injected, so specs fire ticks by hand instead of waiting.
 */
import type { EventDef, ScheduleTrigger } from '../events/model.ts';
import { parseCron } from '../events/parse.ts';
import type { Logger } from '../shared/log.ts';
import { describeError } from '../shared/errors.ts';

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => { const t = setTimeout(fn, ms); t.unref(); return t; },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface Tick { at: string; every?: number; cron?: string }

export interface ScheduleOptions {
  /** true when this runtime won the tick. */
  claim: (eventId: string, at: number) => Promise<boolean>;
  fire: (event: EventDef, tick: Tick) => void;
  clock?: Clock;
  logger: Logger;
}

const MINUTE = 60_000;

/** The first cron minute strictly after `after` (UTC), or undefined if none within ~4 years. */
export function nextCronTime(expr: string, after: number): number | undefined {
  const parsed = parseCron(expr);
  if (!parsed.ok) return undefined;
  const [mins, hours, doms, months, dows] = parsed.fields.map((f) => new Set(f)) as Set<number>[];
  const domAny = doms!.size === 31;
  const dowAny = dows!.size === 7;
  let t = Math.floor(after / MINUTE) * MINUTE + MINUTE;
  const limit = after + 4 * 366 * 24 * 60 * MINUTE;
  while (t < limit) {
    const d = new Date(t);
    if (!months!.has(d.getUTCMonth() + 1)) { t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1); continue; }
    const domOk = doms!.has(d.getUTCDate());
    const dowOk = dows!.has(d.getUTCDay());
    // Standard cron: when both day fields are restricted, either may match.
    const dayOk = domAny && dowAny ? true : domAny ? dowOk : dowAny ? domOk : domOk || dowOk;
    if (!dayOk) { t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1); continue; }
    if (!hours!.has(d.getUTCHours())) { t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours() + 1); continue; }
    if (mins!.has(d.getUTCMinutes())) return t;
    t += MINUTE;
  }
  return undefined;
}

export function nextTick(trigger: ScheduleTrigger, after: number): number | undefined {
  if (trigger.every) return Math.floor(after / trigger.every) * trigger.every + trigger.every;
  if (trigger.cron) return nextCronTime(trigger.cron, after);
  return undefined;
}

export class ScheduleTriggers {
  private readonly timers = new Map<string, unknown[]>();
  private readonly clock: Clock;

  constructor(private readonly opts: ScheduleOptions) {
    this.clock = opts.clock ?? systemClock;
  }

  /** Reconciles one event: (re)arms its schedule triggers, or disarms them when it is gone or disabled. */
  set(id: string, event: EventDef | undefined): void {
    this.clear(id);
    if (!event || event.disabled) return;
    const schedules = event.triggers.filter((t): t is ScheduleTrigger => t.kind === 'schedule');
    if (schedules.length === 0) return;
    const handles: unknown[] = [];
    this.timers.set(id, handles);
    schedules.forEach((trigger, i) => this.arm(event, trigger, i, handles));
  }

  private arm(event: EventDef, trigger: ScheduleTrigger, index: number, handles: unknown[]): void {
    const at = nextTick(trigger, this.clock.now());
    if (at === undefined) return;
    // Long waits are re-armed in steps, so a suspended machine or clock change is noticed.
    const wait = Math.min(Math.max(0, at - this.clock.now()), 3_600_000);
    handles[index] = this.clock.setTimeout(() => {
      if (this.timers.get(event.id) !== handles) return; // the event changed meanwhile
      if (this.clock.now() + 5 < at) { this.arm(event, trigger, index, handles); return; }
      this.arm(event, trigger, index, handles);
      void this.opts.claim(`${event.id}-${index}`, at).then((won) => {
        if (won) this.opts.fire(event, { at: new Date(at).toISOString(), ...(trigger.every ? { every: trigger.every } : { cron: trigger.cron }) });
      }, (err) => this.opts.logger.warn('schedule tick not claimed', { event: event.id, error: describeError(err) }));
    }, wait);
  }

  private clear(id: string): void {
    for (const h of this.timers.get(id) ?? []) if (h !== undefined) this.clock.clearTimeout(h);
    this.timers.delete(id);
  }

  close(): void {
    for (const id of [...this.timers.keys()]) this.clear(id);
  }
}
