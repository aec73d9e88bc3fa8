/**
 * A runtime told to keep no activation records (LIVELY_LOG_RECORDS=0): triggers work as ever,
 * nothing is written to the day databases, and metrics still count every activation.
 */
import { expect } from 'chai';
import { request } from 'undici';
import type { Runtime } from '../../src/runtime.ts';
import { startRuntime } from '../support/runtime.ts';
import { adminHeaders } from '../support/couch.ts';

const att = (code: string) => ({ content_type: 'application/javascript', data: Buffer.from(code).toString('base64') });

describe('a runtime without activation records', function () {
  this.timeout(30_000);
  let rt: Runtime;

  before(async () => {
    rt = await startRuntime({ config: { logRecords: false } });
    await rt.db.workers.insert({ _id: 'quiet', type: 'node', delegate: 'main.js', _attachments: { 'main.js': att('module.exports = async () => ({ ok: 1 });') } } as never);
    await rt.db.events.insert({ _id: 'quiet_event', trigger: { '/quiet': {} }, workers: { quiet: {} } } as never);
    for (let i = 0; i < 100 && !rt.catalog.get('quiet_event'); i++) await new Promise((r) => setTimeout(r, 20));
  });
  after(() => rt.stop());

  it('runs triggers, writes no record, and still counts them in /_lively/metrics', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await request(`${rt.url}/_events/quiet?wait=true`);
      expect(res.statusCode).to.equal(200);
      const body = (await res.body.json()) as { outcomes: Array<{ status: string; result: unknown }> };
      expect(body.outcomes[0]).to.deep.include({ status: 'ok', result: { ok: 1 } });
    }
    await rt.activationLog.flush();
    expect(rt.activationLog.written).to.equal(0);
    const list = await request(`${rt.url}/_lively/activations`, { headers: adminHeaders() });
    expect(((await list.body.json()) as { activations: unknown[] }).activations).to.deep.equal([]);
    const metrics = await (await request(`${rt.url}/_lively/metrics`, { headers: adminHeaders() })).body.text();
    expect(metrics).to.match(/^livelycouch_triggers_total\{event="quiet_event",status="ok"\} 3$/m);
  });
});
