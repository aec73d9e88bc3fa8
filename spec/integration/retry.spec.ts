/**
 * Retry policies on real thread workers: a worker failing twice then succeeding ends ok with
 * three attempts; one failing always ends as a dead activation; a worker waiting out its
 * backoff holds no gate slot.
 */
import { expect } from 'chai';
import { adminHeaders } from '../support/couch.ts';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import type { Runtime } from '../../src/runtime.ts';
import { eventually, postEvent, startRuntime } from '../support/runtime.ts';

const att = (code: string) => ({ content_type: 'application/javascript', data: Buffer.from(code).toString('base64') });

/** Counts its runs in the file it is given; fails while the count is at most `failures`. */
const FLAKY = `const fs = require('fs');
module.exports = async (msg) => {
  const f = msg.parameters.file;
  const n = (fs.existsSync(f) ? Number(fs.readFileSync(f, 'utf8')) : 0) + 1;
  fs.writeFileSync(f, String(n));
  if (n <= Number(msg.parameters.failures)) throw new Error('failure number ' + n);
  return { run: n };
};`;

describe('worker retries', function () {
  this.timeout(30_000);
  let rt: Runtime;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lively-retry-'));
  let files = 0;
  const file = () => path.join(dir, `runs-${files++}`);

  before(async () => {
    rt = await startRuntime();
    await rt.db.workers.bulk({ docs: [
      { _id: 'flaky', type: 'node', delegate: 'index.js', _attachments: { 'index.js': att(FLAKY) } },
      { _id: 'single', type: 'node', delegate: 'index.js', concurrency: 1, _attachments: { 'index.js': att(FLAKY) } },
    ] });
    await rt.db.events.bulk({ docs: [
      { _id: 'three', trigger: { '/three': {} }, workers: [{ name: 'flaky', retry: { attempts: 3, backoff: '20ms' } }] },
      { _id: 'once', trigger: { '/once': {} }, workers: [{ name: 'flaky' }] },
      { _id: 'patient', trigger: { '/patient': {} }, workers: [{ name: 'single', retry: { attempts: 2, backoff: '10m' } }] },
      { _id: 'plain', trigger: { '/plain': {} }, workers: { single: {} } },
    ] });
    await eventually(() => rt.catalog.matcher.size >= 4, 5_000, 'events loaded');
  });
  after(async () => {
    await rt.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a worker failing twice then succeeding, with three attempts, ends ok with attempts 3 and the failures in its logs', async () => {
    const f = file();
    const r = await postEvent(rt, '/three?wait=true', { file: f, failures: 2 });
    expect(r.status).to.equal(200);
    const [o] = r.body.outcomes;
    expect(o).to.include({ worker: 'flaky', status: 'ok', attempts: 3 });
    expect(o.result).to.deep.equal({ run: 3 });
    const notes = o.logs.filter((l: { msg: string }) => /^attempt \d of 3 failed/.test(l.msg));
    expect(notes.map((l: { msg: string }) => l.msg)).to.have.length(2);
    expect(notes[0].msg).to.contain('failure number 1').and.contain('retrying in 20 ms');
    expect(notes[1].msg).to.contain('failure number 2').and.contain('retrying in 40 ms'); // doubled
    expect(readFileSync(f, 'utf8')).to.equal('3');
  });

  it('an ok first attempt carries attempts 1; a worker without a policy runs once and carries no attempts', async () => {
    const ok = await postEvent(rt, '/three?wait=true', { file: file(), failures: 0 });
    expect(ok.body.outcomes[0]).to.include({ status: 'ok', attempts: 1 });
    const f = file();
    const failed = await postEvent(rt, '/once?wait=true', { file: f, failures: 5 });
    expect(failed.body.outcomes[0].status).to.equal('error');
    expect(failed.body.outcomes[0]).to.not.have.property('attempts');
    expect(readFileSync(f, 'utf8')).to.equal('1');
  });

  it('a worker failing always ends as a dead activation after its attempts, listed by the activations API', async () => {
    const f = file();
    const r = await postEvent(rt, '/three?wait=true', { file: f, failures: 99 });
    const [o] = r.body.outcomes;
    expect(o).to.include({ status: 'error', attempts: 3 });
    expect(o.error.message).to.contain('failure number 3');
    expect(readFileSync(f, 'utf8')).to.equal('3');
    const list = await request(`${rt.url}/_lively/activations?limit=50`, { headers: adminHeaders() });
    const { activations } = (await list.body.json()) as { activations: Array<{ activation: string; dead?: boolean; workers: Array<{ attempts?: number }> }> };
    const rec = activations.find((a) => a.activation === r.body.activation);
    expect(rec, 'the activation record').to.not.equal(undefined);
    expect(rec!.dead).to.equal(true);
    expect(rec!.workers[0]!.attempts).to.equal(3);
    // An activation that failed without a retry policy is not dead; one that recovered is not either.
    const once = await postEvent(rt, '/once?wait=true', { file: file(), failures: 5 });
    const recovered = await postEvent(rt, '/three?wait=true', { file: file(), failures: 1 });
    const again = ((await (await request(`${rt.url}/_lively/activations?limit=50`, { headers: adminHeaders() })).body.json()) as { activations: typeof activations }).activations;
    expect(again.find((a) => a.activation === once.body.activation)).to.not.have.property('dead');
    expect(again.find((a) => a.activation === recovered.body.activation)).to.not.have.property('dead');
  });

  it('holds no gate slot while waiting out its backoff: another message of a concurrency-1 worker runs meanwhile', async () => {
    const waiting = rt.firing.retrying;
    const patient = await postEvent(rt, '/patient', { file: file(), failures: 1 });
    expect(patient.status).to.equal(202);
    await eventually(() => rt.firing.retrying === waiting + 1, 5_000, 'the first attempt to fail');
    const plain = await postEvent(rt, '/plain?wait=true', { file: file(), failures: 0 });
    expect(plain.status).to.equal(200);
    expect(plain.body.outcomes[0]).to.include({ status: 'ok' });
    expect(rt.firing.retrying).to.equal(waiting + 1); // still in its 10-minute backoff
  });
});
