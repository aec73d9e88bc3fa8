/**
 * State in the state database that no runtime could have written — written here with admin
 * credentials, as an intruder or a mistaken admin would — is noticed, logged, shown in
 * `/_lively/status` and recovered from, instead of silently stopping a trigger.
 */
import { expect } from 'chai';
import { connect } from '../../src/store/couch.ts';
import { couchUrl, dropPrefix, uniquePrefix } from '../support/couch.ts';
import { RecordingDispatcher } from '../support/recording-dispatcher.ts';
import { eventually, startRuntime } from '../support/runtime.ts';
import type { Runtime } from '../../src/runtime.ts';
import { stateName, triggerKey } from '../../src/triggers/changes.ts';
import { scheduleKey } from '../../src/triggers/schedule.ts';
import { TickClaims } from '../../src/triggers/ticks.ts';
import type { ChangesTrigger, ScheduleTrigger } from '../../src/events/model.ts';

const worker = { _id: 'w', delegate: 'i.js', _attachments: { 'i.js': { content_type: 'application/javascript', data: Buffer.from('1').toString('base64') } } };

interface StatusAnomalies { total: number; counts: Record<string, number>; recent: Array<{ kind: string; doc: string; detail: string }> }

async function anomalies(rt: Runtime): Promise<StatusAnomalies> {
  return (await rt.firer.status()).anomalies as StatusAnomalies;
}

describe('runtime state that cannot be right is refused, reported and recovered from', function () {
  this.timeout(60_000);
  const prefixes: string[] = [];
  const runtimes: Runtime[] = [];
  const admin = connect(couchUrl());
  const fresh = () => { const p = uniquePrefix(); prefixes.push(p); return p; };
  const start = async (prefix: string, rec: RecordingDispatcher, leaseMs = 15_000) => {
    const rt = await startRuntime({ config: { dbPrefix: prefix, leaseMs }, dispatchers: [rec] });
    runtimes.push(rt);
    return rt;
  };
  afterEach(async () => { for (const rt of runtimes.splice(0)) await rt.stop(2_000); });
  after(async () => { for (const p of prefixes) await dropPrefix(p); });

  async function followInbox(rt: Runtime, inbox: string): Promise<ChangesTrigger> {
    await rt.db.workers.insert(worker).catch((err) => { if (err.statusCode !== 409) throw err; });
    await rt.db.events.insert({ _id: 'on_inbox', trigger: [{ changes: { db: inbox } }], workers: { w: {} } }).catch((err) => { if (err.statusCode !== 409) throw err; });
    await eventually(() => rt.changesTriggers!.feeds('on_inbox') === 1, 10_000, 'feed following');
    return rt.catalog.get('on_inbox')!.triggers.find((t): t is ChangesTrigger => t.kind === 'changes')!;
  }

  const delivered = (rec: RecordingDispatcher, id: string) => rec.messages.some((m) => (m.parameters as { id?: string }).id === id);

  it('a changes checkpoint rewritten to a seq the database never had: reported, the feed resumes from the database\'s current seq and every new change is fired', async () => {
    const prefix = fresh();
    const inbox = `${prefix}inbox`;
    await admin.db.create(inbox);
    const rec1 = new RecordingDispatcher();
    const rt1 = await start(prefix, rec1);
    const trigger = await followInbox(rt1, inbox);
    await admin.use(inbox).insert({ _id: 'before' });
    await eventually(() => delivered(rec1, 'before'), 10_000, 'first change fired');
    await eventually(async () => (await rt1.firer.status()).feeds instanceof Array && ((await rt1.firer.status()).feeds as Array<{ checkpoint?: string }>)[0]?.checkpoint !== undefined, 5_000, 'checkpointed');
    await rt1.stop(2_000);
    runtimes.splice(runtimes.indexOf(rt1), 1);

    // the state an intruder leaves: a seq far ahead of anything the database gave
    const logs = admin.use<{ seq: string }>(`${prefix}logs`);
    const id = `_local/changes-${stateName(triggerKey('on_inbox', trigger))}`;
    const cp = await logs.get(id);
    await logs.insert({ ...cp, seq: '99999999999999' });

    const rec2 = new RecordingDispatcher();
    const rt2 = await start(prefix, rec2);
    await eventually(() => rt2.changesTriggers!.feeds('on_inbox') === 1, 10_000, 'feed following again');
    const ids = Array.from({ length: 20 }, (_, i) => `after${i}`);
    await admin.use(inbox).bulk({ docs: ids.map((_id) => ({ _id })) });
    await eventually(() => ids.every((i) => delivered(rec2, i)), 15_000, 'all 20 new changes fired');
    const a = await anomalies(rt2);
    expect(a.counts['bad-checkpoint']).to.equal(1);
    expect(a.recent[0]!.doc).to.equal(id);
    expect(a.recent[0]!.detail).to.include('99999999999999');
  });

  it('a schedule claim rewritten far into the future: reported and overwritten, and the schedule keeps ticking', async () => {
    const prefix = fresh();
    const rec = new RecordingDispatcher();
    const rt = await start(prefix, rec);
    await rt.db.workers.insert(worker);
    await rt.db.events.insert({ _id: 'tick', trigger: [{ schedule: { every: '1s' } }], workers: { w: {} } });
    await eventually(() => rec.messages.length >= 1, 10_000, 'a first tick');
    const trigger = rt.catalog.get('tick')!.triggers.find((t): t is ScheduleTrigger => t.kind === 'schedule')!;
    const logs = admin.use<{ last: number }>(`${prefix}logs`);
    const docId = TickClaims.docId(scheduleKey('tick', trigger));
    const claim = await logs.get(docId);
    await logs.insert({ ...claim, last: 99999999999999 });
    const seen = rec.messages.length;
    await eventually(() => rec.messages.length >= seen + 2, 10_000, 'ticks after the rewrite');
    const a = await anomalies(rt);
    expect(a.counts['future-claim']).to.be.at.least(1);
    expect(a.recent.find((x) => x.kind === 'future-claim')!.doc).to.equal(docId);
    expect((await logs.get(docId)).last).to.be.below(Date.now() + 60_000);
    const metrics = await rt.firer.metrics();
    expect(metrics).to.match(/livelycouch_state_refused_total\{kind="future-claim"\} [1-9]/);
  });

  it('a lease rewritten while its holder\'s period runs: reported, taken back (or, for a holder ordered first, waited out), and the feed goes on firing', async () => {
    const prefix = fresh();
    const inbox = `${prefix}inbox`;
    await admin.db.create(inbox);
    const rec = new RecordingDispatcher();
    const rt = await start(prefix, rec, 600);
    const trigger = await followInbox(rt, inbox);
    const logs = admin.use<{ holder: string | null }>(`${prefix}logs`);
    const leaseId = `lease-changes-${stateName(triggerKey('on_inbox', trigger))}`;
    const rewrite = async (holder: string | null) => {
      for (;;) {
        const doc = await logs.get(leaseId);
        try { await logs.insert({ ...doc, holder }); return; } catch (err) { if ((err as { statusCode?: number }).statusCode !== 409) throw err; }
      }
    };
    // rewritten every 150 ms for 4 s, as the attack that stalled a trigger did; a change written meanwhile is fired meanwhile
    let rewriting = true;
    const attack = (async () => {
      for (let i = 0, end = Date.now() + 4_000; Date.now() < end; i++) { await rewrite(i % 2 ? null : '~intruder'); await new Promise((r) => setTimeout(r, 150)); }
      rewriting = false;
    })();
    await new Promise((r) => setTimeout(r, 300));
    await admin.use(inbox).insert({ _id: 'during' });
    await eventually(() => delivered(rec, 'during'), 3_500, 'a change fired while the rewrites go on');
    expect(rewriting).to.equal(true);
    await attack;
    let a = await anomalies(rt);
    expect(a.counts['lease-rewritten']).to.be.at.least(1);
    expect(a.recent.find((x) => x.kind === 'lease-rewritten')!.detail).to.include('taken back');
    await eventually(async () => (await logs.get(leaseId)).holder !== '~intruder' && (await logs.get(leaseId)).holder !== null, 5_000, 'the runtime holds it again');

    // a holder named before this runtime: it steps back, and takes over once the rewrites stop
    await rewrite('!intruder');
    await eventually(async () => (await anomalies(rt)).recent.some((x) => x.detail.includes('"!intruder"') && x.detail.includes('stepping back')), 5_000, 'the second rewrite reported, and the runtime stepping back');
    await admin.use(inbox).insert({ _id: 'later' });
    await eventually(() => delivered(rec, 'later'), 10_000, 'fired once the lease was taken over again');
  });
});
