/**
 * Late output through the runtime: what a never-acknowledging process worker writes after
 * silence ended its message is kept in a record of its own that names the activation
 * (`lateOf`), listed by /_lively/activations and printed by `livelycouch logs`.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { request } from 'undici';
import type { Runtime } from '../../src/runtime.ts';
import { activationLine } from '../../src/cli/format.ts';
import { adminHeaders } from '../support/couch.ts';
import { eventually, startRuntime } from '../support/runtime.ts';

const latePy = readFileSync(new URL('../fixtures/workers/process/late.py', import.meta.url));

async function call(rt: Runtime, p: string): Promise<{ status: number; body: any }> {
  const res = await request(rt.url + p, { headers: p.startsWith('/_lively/') ? adminHeaders() : {} });
  return { status: res.statusCode, body: await res.body.json() };
}

describe('late output of a process worker, through the runtime', function () {
  this.timeout(30_000);
  let rt: Runtime;
  before(async () => {
    rt = await startRuntime();
    await rt.db.workers.insert({ _id: 'late_py', type: 'python', delegate: 'late.py', _attachments: { 'late.py': { content_type: 'text/x-python', data: latePy.toString('base64') } } } as never);
    await rt.db.events.insert({ _id: 'late', trigger: { '/late': {} }, workers: { late_py: {} } } as never);
    await eventually(() => rt.catalog.matcher.size >= 1, 5_000, 'event loaded');
  });
  after(() => rt.stop());

  it('is kept in a record naming the activation, shown by the activations API and by logs', async () => {
    const fired = await call(rt, '/_events/late?wait=true&n=7');
    expect(fired.status).to.equal(200);
    expect(fired.body.outcomes[0].status, JSON.stringify(fired.body)).to.equal('ok');
    expect(fired.body.outcomes[0].logs.map((l: { msg: string }) => l.msg)).to.deep.equal(['handling message 7']);
    const activation = fired.body.activation as string;
    let late: any;
    await eventually(async () => {
      const list = await call(rt, '/_lively/activations?event=late&limit=20');
      late = (list.body.activations as any[]).find((a) => a.lateOf === activation);
      return late !== undefined;
    }, 10_000, 'the late record');
    expect(late.workers[0].worker).to.equal('late_py');
    expect(late.workers[0].logs.map((l: { msg: string }) => l.msg)).to.deep.equal(['late (after the message was ended by silence): late line for message 7']);
    const one = await call(rt, `/_lively/activations/${late.activation}`);
    expect(one.body.lateOf).to.equal(activation);
    expect(activationLine(late)).to.contain(`late output of ${activation}`).and.to.contain('late line for message 7');
  });
});
