import { expect } from 'chai';
import { lastTickBetween, nextCronTime, nextTick, scheduleKey, ScheduleTriggers, type Tick } from '../../src/triggers/schedule.ts';
import { ManualClock } from '../support/clock.ts';
import { TickClaims } from '../../src/triggers/ticks.ts';
import { connect } from '../../src/store/couch.ts';
import { couchUrl, dropPrefix, uniquePrefix } from '../support/couch.ts';
import type { ScheduleTrigger } from '../../src/events/model.ts';
import { eventually } from '../support/runtime.ts';
import { parseEventDoc } from '../../src/events/parse.ts';
import type { EventDef } from '../../src/events/model.ts';
import { silentLogger } from '../../src/shared/logger.ts';

function event(doc: Record<string, unknown>): EventDef {
  const r = parseEventDoc(doc);
  if (!r.ok) throw new Error(r.reason);
  return r.event;
}

const T0 = Date.UTC(2026, 0, 5, 10, 0, 30); // Monday 10:00:30 UTC
const winterStart = Date.UTC(2026, 0, 5);

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

  it('nextCronTime reads the fields on the wall clock of "tz" (IANA zones through Intl; UTC by default)', () => {
    const winter = Date.UTC(2026, 0, 5, 0, 0); // CET, UTC+1
    const summer = Date.UTC(2026, 6, 6, 0, 0); // CEST, UTC+2
    expect(nextCronTime('0 9 * * *', winter, 'Europe/Berlin')).to.equal(Date.UTC(2026, 0, 5, 8, 0));
    expect(nextCronTime('0 9 * * *', summer, 'Europe/Berlin')).to.equal(Date.UTC(2026, 6, 6, 7, 0));
    expect(nextCronTime('0 9 * * *', winter, 'America/New_York')).to.equal(Date.UTC(2026, 0, 5, 14, 0));
    expect(nextCronTime('0 9 * * *', winter, 'Asia/Kolkata')).to.equal(Date.UTC(2026, 0, 5, 3, 30)); // UTC+5:30
    expect(nextCronTime('0 9 * * *', winter, 'UTC')).to.equal(nextCronTime('0 9 * * *', winter));
    // the day fields are the zone's too: Monday 00:30 in Tokyo is still Sunday in UTC
    expect(nextCronTime('30 0 * * mon', Date.UTC(2026, 0, 3, 0, 0), 'Asia/Tokyo')).to.equal(Date.UTC(2026, 0, 4, 15, 30));
    expect(nextCronTime('0 0 1 * *', Date.UTC(2026, 0, 5), 'Australia/Sydney')).to.equal(Date.UTC(2026, 0, 31, 13, 0)); // Feb 1st, UTC+11
  });

  it('nextCronTime across daylight-saving changes: a fixed-hour job fires once in a repeated hour and not in a skipped one; an hourly one every hour', () => {
    // Berlin, 25 Oct 2026: 03:00 CEST becomes 02:00 CET, so 02:30 happens at 00:30Z and again at 01:30Z
    const first = nextCronTime('30 2 * * *', Date.UTC(2026, 9, 24, 12, 0), 'Europe/Berlin');
    expect(first).to.equal(Date.UTC(2026, 9, 25, 0, 30));
    expect(nextCronTime('30 2 * * *', first!, 'Europe/Berlin')).to.equal(Date.UTC(2026, 9, 26, 1, 30));
    // an hourly cron fires every real hour through the change, the repeated one included
    const hours: number[] = [];
    for (let t = Date.UTC(2026, 9, 24, 22, 0); hours.length < 5;) { t = nextCronTime('0 * * * *', t, 'Europe/Berlin')!; hours.push(t); }
    expect(hours.map((t) => new Date(t).toISOString().slice(11, 16))).to.deep.equal(['23:00', '00:00', '01:00', '02:00', '03:00']);
    // Berlin, 29 Mar 2026: 02:00 CET becomes 03:00 CEST; 02:30 does not exist that day
    expect(nextCronTime('30 2 * * *', Date.UTC(2026, 2, 28, 12, 0), 'Europe/Berlin')).to.equal(Date.UTC(2026, 2, 30, 0, 30));
    expect(() => nextCronTime('0 9 * * *', winterStart, 'Mars/Olympus_Mons')).to.throw(RangeError);
  });

  it('lastTickBetween finds the latest missed tick and, for "every", how many were missed', () => {
    const every: ScheduleTrigger = { kind: 'schedule', every: 60_000 };
    expect(lastTickBetween(every, Date.UTC(2026, 0, 5, 9, 50), T0)).to.deep.equal({ at: Date.UTC(2026, 0, 5, 10, 0), missed: 10 });
    expect(lastTickBetween(every, Date.UTC(2026, 0, 5, 10, 0), T0)).to.equal(undefined);
    const cron: ScheduleTrigger = { kind: 'schedule', cron: '0 9 * * *', tz: 'Europe/Berlin' };
    expect(lastTickBetween(cron, Date.UTC(2025, 11, 1), T0)).to.deep.equal({ at: Date.UTC(2026, 0, 5, 8, 0) });
    expect(lastTickBetween(cron, Date.UTC(2026, 0, 5, 8, 0), T0)).to.equal(undefined);
    const everyMinute: ScheduleTrigger = { kind: 'schedule', cron: '* * * * *' };
    expect(lastTickBetween(everyMinute, Date.UTC(2025, 0, 1), T0)).to.deep.equal({ at: Date.UTC(2026, 0, 5, 10, 0) });
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

  it('a tick whose claim is in flight when it closes still fires once won, and close() waits for that claim; no tick after', async () => {
    const clock = new ManualClock(T0);
    const fired: Tick[] = [];
    let win: ((won: boolean) => void) | undefined;
    const s = new ScheduleTriggers({ clock, claim: () => new Promise<boolean>((resolve) => { win = resolve; }), logger: silentLogger, fire: (_e, t) => fired.push(t) });
    const ev = event({ _id: 'e', trigger: [{ schedule: { cron: '* * * * *' } }], workers: { w: {} } });
    s.set(ev.id, ev);
    clock.advance(60_000);
    await new Promise((r) => setImmediate(r));
    expect(win, 'the first tick is being claimed').to.be.a('function');
    let closed = false;
    const closing = s.close().then(() => { closed = true; });
    await new Promise((r) => setImmediate(r));
    expect(closed, 'close() waits for the claim in flight').to.equal(false);
    win!(true);
    await closing;
    // claimed by this runtime, so no other will run it: it fires although the triggers closed
    expect(fired.map((t) => t.at)).to.deep.equal(['2026-01-05T10:01:00.000Z']);
    s.set(ev.id, ev); // an event change arriving while the runtime stops arms nothing
    clock.advance(5 * 60_000);
    await new Promise((r) => setImmediate(r));
    expect(fired).to.have.length(1);
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

  /** Claims kept as the store keeps them (one record per trigger, written only while its last tick is older). */
  function memoryClaims(start: Record<string, number> = {}) {
    const last = new Map(Object.entries(start));
    return {
      last: async (key: string) => last.get(key),
      claim: async (key: string, at: number) => { const l = last.get(key); if (l !== undefined && l >= at) return false; last.set(key, at); return true; },
    };
  }

  it('ticks missed while no runtime ran fire once, as the last of them, marked catchUp', async () => {
    const clock = new ManualClock(T0);
    const ev = event({ _id: 'minutely', trigger: [{ schedule: { every: '1m' } }], workers: { w: {} } });
    const key = scheduleKey(ev.id, ev.triggers[0] as ScheduleTrigger);
    const claims = memoryClaims({ [key]: Date.UTC(2026, 0, 5, 9, 50) }); // ten ticks ago
    const fired: Tick[] = [];
    const s = new ScheduleTriggers({ clock, ...claims, logger: silentLogger, fire: (_e, t) => fired.push(t) });
    s.set(ev.id, ev);
    await new Promise((r) => setImmediate(r));
    expect(fired).to.deep.equal([{ at: '2026-01-05T10:00:00.000Z', every: 60_000, catchUp: true, missed: 10 }]);
    // an edit of the event re-arms it: nothing is missed now, so nothing more catches up
    s.set(ev.id, ev);
    await new Promise((r) => setImmediate(r));
    clock.advance(60_000);
    await new Promise((r) => setImmediate(r));
    expect(fired.map((t) => [t.at, t.catchUp ?? false])).to.deep.equal([['2026-01-05T10:00:00.000Z', true], ['2026-01-05T10:01:00.000Z', false]]);
    s.close();
  });

  it('"catchup": 0 skips missed ticks; a trigger never claimed before has nothing to catch up', async () => {
    const clock = new ManualClock(T0);
    const quiet = event({ _id: 'quiet', trigger: { schedule: { every: '1m', catchup: 0 } }, workers: { w: {} } });
    const fresh = event({ _id: 'fresh', trigger: { schedule: { every: '1m' } }, workers: { w: {} } });
    const claims = memoryClaims({ [scheduleKey('quiet', quiet.triggers[0] as ScheduleTrigger)]: T0 - 3_600_000 });
    const fired: string[] = [];
    const s = new ScheduleTriggers({ clock, ...claims, logger: silentLogger, fire: (e, t) => fired.push(`${e.id}@${t.at}`) });
    s.set(quiet.id, quiet);
    s.set(fresh.id, fresh);
    await new Promise((r) => setImmediate(r));
    expect(fired).to.deep.equal([]);
    clock.advance(30_000);
    await new Promise((r) => setImmediate(r));
    expect(fired.sort()).to.deep.equal(['fresh@2026-01-05T10:01:00.000Z', 'quiet@2026-01-05T10:01:00.000Z']);
    s.close();
  });

  it('an unknown time zone leaves that trigger unarmed and the event\'s other triggers ticking', async () => {
    const clock = new ManualClock(T0);
    const fired: Tick[] = [];
    const s = new ScheduleTriggers({ clock, claim: async () => true, logger: silentLogger, fire: (_e, t) => fired.push(t) });
    // as an engine without Intl would have let it through validation
    const ev: EventDef = { ...event({ _id: 'z', trigger: [{ schedule: { every: '1m' } }], workers: { w: {} } }) };
    const withBadZone: EventDef = { ...ev, triggers: [{ kind: 'schedule', cron: '* * * * *', tz: 'Mars/Olympus_Mons' }, ...ev.triggers] };
    s.set(ev.id, withBadZone);
    clock.advance(60_000);
    await new Promise((r) => setImmediate(r));
    expect(fired.map((t) => t.every)).to.deep.equal([60_000]);
    s.close();
  });
});

describe('TickClaims (one claim document per schedule trigger in the logs database)', () => {
  const prefix = uniquePrefix();
  const server = connect(couchUrl());
  before(() => server.db.create(`${prefix}logs`));
  after(() => dropPrefix(prefix));

  it('PUT /logs/schedule-<hash> with the read _rev - of runtimes claiming one tick at once exactly one wins (409 for the rest)', async () => {
    const db = server.use(`${prefix}logs`);
    const runtimes = Array.from({ length: 5 }, (_, i) => new TickClaims(db, `rt${i}`));
    const key = 'ev:abc';
    expect(await runtimes[0]!.last(key)).to.equal(undefined);
    for (const at of [60_000, 120_000, 180_000]) {
      const won = await Promise.all(runtimes.map((r) => r.claim(key, at)));
      expect(won.filter(Boolean)).to.have.length(1);
    }
    expect(await runtimes[3]!.last(key)).to.equal(180_000);
    // a runtime waking late for a tick already passed does nothing
    expect(await runtimes[4]!.claim(key, 120_000)).to.equal(false);
    // claims do not pile up: one document holds them all
    const page = await db.list({ startkey: 'schedule-', endkey: 'schedule-\ufff0' });
    expect(page.rows).to.have.length(1);
    expect(page.rows[0]!.id).to.equal(TickClaims.docId(key));
  });

  it('cannot flood: one claim in flight per trigger; ticks due meanwhile, a claim won only after the next tick was due and a tick the dispatcher refuses are skipped and counted', async () => {
    const db = server.use(`${prefix}logs`);
    const clock = new ManualClock(Date.UTC(2026, 0, 5, 12, 0, 0, 500));
    const claims = new TickClaims(db, 'slow', undefined, () => clock.now());
    // the store answers only when the spec opens the gate (a store too slow to keep up)
    let open!: () => void;
    let gate = new Promise<void>((r) => { open = r; });
    let inFlight = 0;
    let maxInFlight = 0;
    const claim = async (k: string, at: number) => {
      inFlight++; maxInFlight = Math.max(maxInFlight, inFlight);
      try { await gate; return await claims.claim(k, at); } finally { inFlight--; }
    };
    let refuse = false;
    const fired: Tick[] = [];
    const s = new ScheduleTriggers({ clock, claim, logger: silentLogger, fire: (_e, t) => {
      if (refuse) throw Object.assign(new Error('dispatch queue is full'), { code: 'LC_QUEUE_FULL' });
      fired.push(t);
    } });
    const ev = event({ _id: 'flood', trigger: { schedule: { every: '1s' } }, workers: { w: {} } });
    s.set(ev.id, ev);
    for (let i = 0; i < 100; i++) clock.advance(1_000); // 100 ticks due, the first still being claimed
    expect(maxInFlight).to.equal(1);
    expect(s.stats()).to.deep.include({ fired: 0, skipped: 99 });
    open();
    await eventually(() => inFlight === 0, 5_000, 'the claim answered');
    // won, but 99 ticks late: not fired
    expect(fired).to.have.length(0);
    expect(s.stats()).to.deep.include({ fired: 0, skipped: 100 });
    clock.advance(1_000);
    await eventually(() => fired.length === 1, 5_000, 'the next tick fired');
    refuse = true;
    clock.advance(1_000);
    await eventually(() => s.stats().skipped === 101, 5_000, 'the refused tick counted');
    expect(fired).to.have.length(1);
    gate = Promise.resolve();
    s.close();
  });

  it('three runtimes starting after downtime, claiming through the store: the missed ticks fire once in all', async () => {
    const db = server.use(`${prefix}logs`);
    const clock = new ManualClock(T0);
    const ev = event({ _id: 'report', trigger: { schedule: { cron: '0 * * * *', tz: 'Europe/Berlin' } }, workers: { w: {} } });
    const key = scheduleKey(ev.id, ev.triggers[0] as ScheduleTrigger);
    // the last tick fired before every runtime went down, five hours ago
    expect(await new TickClaims(db, 'before').claim(key, Date.UTC(2026, 0, 5, 5, 0))).to.equal(true);
    const fired: Array<{ by: number; tick: Tick }> = [];
    const runtimes = [0, 1, 2].map((i) => {
      const claims = new TickClaims(db, `rt${i}`);
      return new ScheduleTriggers({ clock, claim: (k, at) => claims.claim(k, at), last: (k) => claims.last(k), logger: silentLogger, fire: (_e, tick) => fired.push({ by: i, tick }) });
    });
    for (const r of runtimes) r.set(ev.id, ev);
    await eventually(async () => (await new TickClaims(db, 'probe').last(key)) === Date.UTC(2026, 0, 5, 10, 0), 5_000, 'catch-up claimed');
    await new Promise((r) => setTimeout(r, 200));
    expect(fired).to.have.length(1);
    expect(fired[0]!.tick).to.deep.equal({ at: '2026-01-05T10:00:00.000Z', cron: '0 * * * *', tz: 'Europe/Berlin', catchUp: true });
    for (const r of runtimes) r.close();
  });
});
