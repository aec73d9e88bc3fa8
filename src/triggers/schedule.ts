/**
 * Schedule triggers (`{ "every": "1m" }`, or `cron` with an optional IANA `tz`). Tick times are
 * absolute, so runtimes agree on them, and only the runtime whose claim wins fires one
 * (./ticks.ts). Missed ticks are not replayed in a burst (`catchup`: the last one or none); a
 * trigger has at most one claim in flight, so a late or refused tick is skipped and counted,
 * never queued. The clock is injected, so specs fire ticks by hand.
 */
import { createHash } from 'node:crypto';
import type { EventDef, ScheduleTrigger } from '../events/model.ts';
import { parseCron } from '../events/parse.ts';
import type { Logger } from '../shared/logger.ts';
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

export interface Tick {
  at: string;
  every?: number;
  cron?: string;
  tz?: string;
  /** set on the one firing for ticks missed while no runtime ran. */
  catchUp?: true;
  /** how many ticks were missed, where that is cheap to know ("every"). */
  missed?: number;
}

/** Ticks of every schedule trigger, as status and metrics show them. */
export interface ScheduleStats {
  /** ticks this runtime claimed and fired. */
  fired: number;
  /** ticks another runtime claimed. */
  lost: number;
  /** ticks skipped: the previous claim was still in flight, the claim came too late, or dispatch refused. */
  skipped: number;
  /** claims that failed (store away): the tick is not fired by this runtime. */
  failed: number;
}

export interface ScheduleOptions {
  /** true when this runtime won the tick; `key` names the trigger. */
  claim: (key: string, at: number) => Promise<boolean>;
  /** the last tick any runtime claimed for `key`, undefined when none ever was (no catch-up then). */
  last?: (key: string) => Promise<number | undefined>;
  fire: (event: EventDef, tick: Tick) => void;
  clock?: Clock;
  logger: Logger;
}

const kMinute = 60_000;
const kHour = 60 * kMinute;
const kDay = 24 * kHour;

interface Wall { month: number; day: number; hour: number; minute: number; weekday: number }

const formatters = new Map<string, Intl.DateTimeFormat>();
const kWeekdays: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

/** The wall clock of zone `tz` (UTC when undefined) at instant `t`. */
function wallClock(t: number, tz: string | undefined): Wall {
  if (tz === undefined || tz === 'UTC') {
    const d = new Date(t);
    return { month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), weekday: d.getUTCDay() };
  }
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', weekday: 'short' });
    formatters.set(tz, f);
  }
  const w: Wall = { month: 0, day: 0, hour: 0, minute: 0, weekday: 0 };
  for (const p of f.formatToParts(t)) {
    if (p.type === 'month') w.month = Number(p.value);
    else if (p.type === 'day') w.day = Number(p.value);
    else if (p.type === 'hour') w.hour = Number(p.value) % 24;
    else if (p.type === 'minute') w.minute = Number(p.value);
    else if (p.type === 'weekday') w.weekday = kWeekdays[p.value] ?? 0;
  }
  return w;
}

/**
 * The first cron minute strictly after `after`, on the wall clock of `tz` (UTC by default),
 * or undefined if none within ~4 years. Across daylight-saving changes a job at fixed hours
 * fires once when its wall-clock time happens twice (the first time) and not at all when it
 * is skipped; a job running every hour keeps firing every hour.
 * An unknown zone throws RangeError.
 */
export function nextCronTime(expr: string, after: number, tz?: string): number | undefined {
  const parsed = parseCron(expr);
  if (!parsed.ok) return undefined;
  const [mins, hours, doms, months, dows] = parsed.fields.map((f) => new Set(f)) as Set<number>[];
  const minList = parsed.fields[0];
  const domAny = doms!.size === 31;
  const dowAny = dows!.size === 7;
  let t = Math.floor(after / kMinute) * kMinute + kMinute;
  const limit = after + 4 * 366 * kDay;
  while (t < limit) {
    const w = wallClock(t, tz);
    const domOk = doms!.has(w.day);
    const dowOk = dows!.has(w.weekday);
    // Standard cron: when both day fields are restricted, either may match.
    const dayOk = domAny && dowAny ? true : domAny ? dowOk : dowAny ? domOk : domOk || dowOk;
    if (!months!.has(w.month) || !dayOk) {
      // on to the next day: in big steps, then hour by hour, so a 23- or 25-hour day is not overshot
      const toMidnight = 24 * 60 - (w.hour * 60 + w.minute);
      t += (toMidnight > 180 ? toMidnight - 120 : 60 - w.minute) * kMinute;
      continue;
    }
    if (!hours!.has(w.hour)) { t += (60 - w.minute) * kMinute; continue; }
    if (!mins!.has(w.minute)) {
      const m = minList.find((x) => x > w.minute);
      t += (m === undefined ? 60 - w.minute : m - w.minute) * kMinute;
      continue;
    }
    // as cron does: a job at fixed hours runs once in a repeated hour; an hourly one keeps its pace
    if (tz !== undefined && hours!.size < 24 && repeatsEarlierWallTime(t, w, tz)) { t += kMinute; continue; }
    return t;
  }
  return undefined;
}

/** Whether the wall clock showed the same time half an hour or an hour before (clocks went back). */
function repeatsEarlierWallTime(t: number, w: Wall, tz: string): boolean {
  for (const back of [30 * kMinute, kHour]) {
    const p = wallClock(t - back, tz);
    if (p.day === w.day && p.hour === w.hour && p.minute === w.minute) return true;
  }
  return false;
}

export function nextTick(trigger: ScheduleTrigger, after: number): number | undefined {
  if (trigger.every) return Math.floor(after / trigger.every) * trigger.every + trigger.every;
  if (trigger.cron) return nextCronTime(trigger.cron, after, trigger.tz);
  return undefined;
}

/**
 * The latest tick in (after, upTo], and how many ticks that range holds where that is cheap
 * to know ("every"); undefined when it holds none.
 */
export function lastTickBetween(trigger: ScheduleTrigger, after: number, upTo: number): { at: number; missed?: number } | undefined {
  const first = nextTick(trigger, after);
  if (first === undefined || first > upTo) return undefined;
  if (trigger.every) {
    const at = Math.floor(upTo / trigger.every) * trigger.every;
    return { at, missed: (at - first) / trigger.every + 1 };
  }
  // cron: look back over growing windows, so a frequent cron is not walked over years
  for (const span of [kHour, kDay, 32 * kDay, 366 * kDay, Infinity]) {
    const from = Math.max(after, upTo - span);
    let at = from === after ? first : nextTick(trigger, from);
    if (at === undefined || at > upTo) continue;
    for (let n = nextTick(trigger, at); n !== undefined && n <= upTo; n = nextTick(trigger, at)) at = n;
    return { at };
  }
  return undefined;
}

/** Names a schedule trigger across runtimes and restarts: its event and what it says. */
export function scheduleKey(eventId: string, trigger: ScheduleTrigger): string {
  const spec = JSON.stringify([trigger.every ?? null, trigger.cron ?? null, trigger.tz ?? null]);
  return `${eventId}:${createHash('sha1').update(spec).digest('hex').slice(0, 12)}`;
}

export class ScheduleTriggers {
  private readonly timers = new Map<string, unknown[]>();
  private readonly clock: Clock;
  /** triggers (by key) with a claim in flight. */
  private readonly claiming = new Set<string>();
  /** the claims and catch-ups in flight, for close() to wait for. */
  private readonly claims = new Set<Promise<void>>();
  private closed = false;
  readonly counts: ScheduleStats = { fired: 0, lost: 0, skipped: 0, failed: 0 };

  constructor(private readonly opts: ScheduleOptions) {
    this.clock = opts.clock ?? systemClock;
  }

  /** Reconciles one event: (re)arms its schedule triggers, or disarms them when it is gone or disabled. */
  set(id: string, event: EventDef | undefined): void {
    this.clear(id);
    if (!event || event.disabled || this.closed) return;
    const schedules = event.triggers.filter((t): t is ScheduleTrigger => t.kind === 'schedule');
    if (schedules.length === 0) return;
    const handles: unknown[] = [];
    this.timers.set(id, handles);
    schedules.forEach((trigger, i) => {
      const key = scheduleKey(event.id, trigger);
      try {
        this.arm(event, trigger, key, i, handles);
      } catch (err) {
        // a zone Intl does not know: this trigger cannot tick; the event's other triggers still do
        this.opts.logger.error('schedule trigger not armed', { event: event.id, error: describeError(err) });
        return;
      }
      if ((trigger.catchup ?? 1) === 1) this.track(this.catchUp(event, trigger, key, handles));
    });
  }

  /** Fires the last tick missed since the last one claimed, once, when nobody has fired it. */
  private async catchUp(event: EventDef, trigger: ScheduleTrigger, key: string, handles: unknown[]): Promise<void> {
    if (!this.opts.last) return;
    try {
      const last = await this.opts.last(key);
      if (last === undefined || this.closed || this.timers.get(event.id) !== handles) return;
      const missed = lastTickBetween(trigger, last, this.clock.now());
      if (!missed) return;
      if (!(await this.opts.claim(key, missed.at)) || this.timers.get(event.id) !== handles) return;
      this.opts.logger.info('schedule: firing a missed tick once', { event: event.id, at: new Date(missed.at).toISOString(), missed: missed.missed });
      this.opts.fire(event, { ...this.tick(trigger, missed.at), catchUp: true, ...(missed.missed !== undefined ? { missed: missed.missed } : {}) });
    } catch (err) {
      this.opts.logger.warn('schedule catch-up not done', { event: event.id, error: describeError(err) });
    }
  }

  private tick(trigger: ScheduleTrigger, at: number): Tick {
    const tick: Tick = { at: new Date(at).toISOString() };
    if (trigger.every) tick.every = trigger.every;
    else tick.cron = trigger.cron;
    if (trigger.tz) tick.tz = trigger.tz;
    return tick;
  }

  private arm(event: EventDef, trigger: ScheduleTrigger, key: string, index: number, handles: unknown[]): void {
    const at = nextTick(trigger, this.clock.now());
    if (at === undefined) return;
    // Long waits are re-armed in steps, so a suspended machine or clock change is noticed.
    const wait = Math.min(Math.max(0, at - this.clock.now()), 3_600_000);
    handles[index] = this.clock.setTimeout(() => {
      if (this.timers.get(event.id) !== handles) return; // the event changed meanwhile
      if (this.clock.now() + 5 < at) { this.arm(event, trigger, key, index, handles); return; }
      this.arm(event, trigger, key, index, handles);
      this.due(event, trigger, key, at, handles);
    }, wait);
  }

  /** One tick is due: claimed unless the previous claim is still in flight, fired unless too late. */
  private due(event: EventDef, trigger: ScheduleTrigger, key: string, at: number, handles: unknown[]): void {
    if (this.claiming.has(key)) {
      this.skip(event, at, 'the previous tick is still being claimed');
      return;
    }
    this.claiming.add(key);
    const claim = this.opts.claim(key, at).then((won) => {
      if (!won) { this.counts.lost++; return; }
      if (this.timers.get(event.id) !== handles) return; // changed or stopped meanwhile
      const next = nextTick(trigger, at);
      if (next !== undefined && this.clock.now() >= next) { this.skip(event, at, 'claimed only after the next tick was due'); return; }
      try {
        this.opts.fire(event, this.tick(trigger, at));
        this.counts.fired++;
      } catch (err) {
        this.counts.skipped++;
        this.opts.logger.warn('schedule tick not dispatched', { event: event.id, at: new Date(at).toISOString(), error: describeError(err) });
      }
    }, (err) => {
      this.counts.failed++;
      this.opts.logger.warn('schedule tick not claimed', { event: event.id, at: new Date(at).toISOString(), error: describeError(err) });
    }).finally(() => this.claiming.delete(key));
    this.track(claim);
  }

  /** A claim (or catch-up) in flight, which close() waits for. */
  private track(claim: Promise<void>): void {
    this.claims.add(claim);
    void claim.finally(() => this.claims.delete(claim));
  }

  private skip(event: EventDef, at: number, why: string): void {
    this.counts.skipped++;
    this.opts.logger.warn('schedule tick skipped', { event: event.id, at: new Date(at).toISOString(), why });
  }

  stats(): ScheduleStats {
    return { ...this.counts };
  }

  private clear(id: string): void {
    for (const h of this.timers.get(id) ?? []) if (h !== undefined) this.clock.clearTimeout(h);
    this.timers.delete(id);
  }

  /**
   * No more ticks. A tick whose claim is in flight still fires if this runtime wins it (no other
   * runtime will, once it is claimed): resolves when those claims are settled, so that the
   * runtime waits for what they fire before it closes its dispatchers.
   */
  close(): Promise<void> {
    this.closed = true;
    // the timers stop; the events stay known, so that a claim in flight still finds its own
    for (const handles of this.timers.values()) for (const h of handles) if (h !== undefined) this.clock.clearTimeout(h);
    return Promise.allSettled([...this.claims]).then(() => undefined);
  }
}
