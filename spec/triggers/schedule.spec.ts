import { expect } from 'chai';
import { nextCronTime, nextTick, ScheduleTriggers, type Clock, type Tick } from '../../src/triggers/schedule.ts';
import { parseEventDoc } from '../../src/events/parse.ts';
import type { EventDef } from '../../src/events/model.ts';
import { silentLogger } from '../../src/shared/log.ts';

/** A clock whose time moves only when the spec says so. */
class ManualClock implements Clock {
  t: number;
  private timers: Array<{ at: number; fn: () => void; id: number }> = [];
  private seq = 0;
  constructor(start: number) { this.t = start; }
  now() { return this.t; }
  setTimeout(fn: () => void, ms: number) { const id = ++this.seq; this.timers.push({ at: this.t + ms, fn, id }); return id; }
  clearTimeout(h: unknown) { this.timers = this.timers.filter((x) => x.id !== h); }
  advance(ms: number) {
    const end = this.t + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.t = next.at;
      next.fn();
    }
    this.t = end;
  }
}

function event(doc: Record<string, unknown>): EventDef {
  const r = parseEventDoc(doc);
  if (!r.ok) throw new Error(r.reason);
  return r.event;
}

const T0 = Date.UTC(2026, 0, 5, 10, 0, 30); // Monday 10:00:30 UTC

describe('schedule triggers', () => {
  it('nextTick aligns "every" to multiples since the epoch, so runtimes agree on tick times', () => {
    expect(nextTick({ kind: 'schedule', every: 60_000 }, T0)).to.equal(Date.UTC(2026, 0, 5, 10, 1, 0));
  });

  it('nextCronTime finds the next matching minute, day and month', () => {
    expect(nextCronTime('*/5 * * * *', T0)).to.equal(Date.UTC(2026, 0, 5, 10, 5));
    expect(nextCronTime('0 9 * * *', T0)).to.equal(Date.UTC(2026, 0, 6, 9, 0));
    expect(nextCronTime('30 8 1 * *', T0)).to.equal(Date.UTC(2026, 1, 1, 8, 30));
    expect(nextCronTime('0 0 * * 0', T0)).to.equal(Date.UTC(2026, 0, 11, 0, 0)); // next Sunday
    expect(nextCronTime('not a cron', T0)).to.equal(undefined);
  });

  it('fires once per tick, and only the runtime that claims the tick fires', async () => {
    const clock = new ManualClock(T0);
    const claimed = new Set<string>();
    const firedA: Tick[] = [];
    const firedB: Tick[] = [];
    const claim = async (key: string, at: number) => { const k = `${key}@${at}`; if (claimed.has(k)) return false; claimed.add(k); return true; };
    const a = new ScheduleTriggers({ clock, claim, logger: silentLogger, fire: (_e, t) => firedA.push(t) });
    const b = new ScheduleTriggers({ clock, claim, logger: silentLogger, fire: (_e, t) => firedB.push(t) });
    const ev = event({ _id: 'minutely', trigger: [{ schedule: { every: '1m' } }], workers: { w: {} } });
    a.set(ev.id, ev);
    b.set(ev.id, ev);
    for (let i = 0; i < 3; i++) { clock.advance(60_000); await new Promise((r) => setImmediate(r)); }
    expect(firedA.length + firedB.length).to.equal(3);
    const ats = [...firedA, ...firedB].map((t) => t.at).sort();
    expect(ats).to.deep.equal(['2026-01-05T10:01:00.000Z', '2026-01-05T10:02:00.000Z', '2026-01-05T10:03:00.000Z']);
    a.close();
    b.close();
  });

  it('a disabled or deleted event stops ticking', async () => {
    const clock = new ManualClock(T0);
    const fired: Tick[] = [];
    const s = new ScheduleTriggers({ clock, claim: async () => true, logger: silentLogger, fire: (_e, t) => fired.push(t) });
    const ev = event({ _id: 'e', trigger: [{ schedule: { cron: '* * * * *' } }], workers: { w: {} } });
    s.set(ev.id, ev);
    clock.advance(60_000);
    await new Promise((r) => setImmediate(r));
    expect(fired).to.have.length(1);
    s.set(ev.id, { ...ev, disabled: true });
    clock.advance(5 * 60_000);
    await new Promise((r) => setImmediate(r));
    expect(fired).to.have.length(1);
    s.set(ev.id, ev);
    s.set(ev.id, undefined);
    clock.advance(5 * 60_000);
    await new Promise((r) => setImmediate(r));
    expect(fired).to.have.length(1);
  });
});
