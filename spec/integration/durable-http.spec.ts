/**
 * Durable events over HTTP, in process: stored before the 202, deleted once finished, no
 * credentials kept; a journal the store refuses gives 503 and runs nothing, while other
 * events are not disturbed.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import type { Runtime } from '../../src/runtime.ts';
import { batchEntries, journalDbName, type JournalBatch } from '../../src/core/durable-store.ts';
import { eventually, postEvent, startRuntime } from '../support/runtime.ts';
import { refuseWrites } from '../support/couch.ts';

const att = (code: string) => ({ content_type: 'application/javascript', data: Buffer.from(code).toString('base64') });

/** Waits for its release file, then appends its `n` to its out file. */
const GATED = `const fs = require('fs');
module.exports = async (msg) => {
  const p = msg.parameters;
  while (p.release && !fs.existsSync(p.release)) await new Promise((r) => setTimeout(r, 20));
  fs.appendFileSync(p.out, p.n + '\\n');
  return { n: p.n };
};`;

describe('durable events over HTTP', function () {
  this.timeout(30_000);
  let rt: Runtime;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lively-durable-'));
  let n = 0;
  const tmp = (name: string) => path.join(dir, `${name}-${n++}`);
  const journal = () => rt.nano.use<Record<string, any>>(journalDbName(rt.config.dbPrefix, Date.now()));
  /** The stored entry of an activation, with whether its batch lists it as finished; undefined when no batch holds it. */
  const stored = async (activation: string): Promise<{ entry: any; done: boolean } | undefined> => {
    for (const row of (await journal().list({ include_docs: true })).rows) {
      const batch = row.doc as unknown as JournalBatch;
      const entry = batchEntries(batch)?.find((e) => e.activation === activation);
      if (entry) return { entry, done: (batch.done ?? []).includes(activation) };
    }
    return undefined;
  };

  before(async () => {
    rt = await startRuntime();
    await rt.db.workers.insert({ _id: 'gated', type: 'node', delegate: 'index.js', _attachments: { 'index.js': att(GATED) } });
    await rt.db.events.bulk({ docs: [
      { _id: 'orders', durable: true, trigger: { '/orders': { method: 'POST' } }, workers: { gated: {} } },
      { _id: 'notes', trigger: { '/notes': { method: 'POST' } }, workers: { gated: {} } },
    ] });
    await eventually(() => rt.catalog.matcher.size >= 2, 5_000, 'events loaded');
  });
  after(async () => {
    await rt.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores the trigger before acknowledging it, without credentials, and deletes it once its workers are done', async () => {
    const release = tmp('release');
    const out = tmp('out');
    const r = await postEvent(rt, '/orders', { n: 1, release, out }, { authorization: 'Basic dXNlcjpwdw==', cookie: 'AuthSession=secret' });
    expect(r.status).to.equal(202);
    const found = await stored(r.body.activation);
    expect(found?.done).to.equal(false);
    const doc = found!.entry;
    expect(doc).to.include({ activation: r.body.activation, path: '/orders', method: 'POST' });
    expect(doc.events).to.deep.equal([{ id: 'orders', bindings: {} }]);
    expect(doc.params).to.include({ n: 1 });
    expect(doc.request.headers).to.not.have.any.keys('authorization', 'cookie');
    expect(doc.request.headers['content-type']).to.equal('application/json');
    writeFileSync(release, '');
    await eventually(() => existsSync(out), 10_000, 'the worker to run');
    await eventually(async () => (await stored(r.body.activation))?.done !== false, 10_000, 'the entry to be marked finished');
  });

  it('?wait=true on a durable event answers with the outcomes', async () => {
    const r = await postEvent(rt, '/orders?wait=true', { n: 2, out: tmp('out') });
    expect(r.status).to.equal(200);
    expect(r.body.outcomes[0]).to.include({ status: 'ok' });
  });

  it('a journal the store refuses: 503 LC_NOT_PERSISTED, nothing runs, other events are not disturbed, and it recovers', async () => {
    const db = journal();
    await journal().info(); // the day's database exists after the first accept
    const allow = await refuseWrites(db.config.db, 'the journal is read-only');
    const out = tmp('out');
    const refused = await postEvent(rt, '/orders?wait=true', { n: 3, out });
    expect(refused.status).to.equal(503);
    expect(refused.body.error).to.equal('LC_NOT_PERSISTED');
    expect(refused.body.reason).to.contain('not stored').and.contain('the journal is read-only');
    const other = await postEvent(rt, '/notes?wait=true', { n: 4, out });
    expect(other.status).to.equal(200);
    expect(readFileSync(out, 'utf8')).to.equal('4\n'); // the refused trigger never ran
    await allow();
    const back = await postEvent(rt, '/orders?wait=true', { n: 5, out });
    expect(back.status).to.equal(200);
    expect(readFileSync(out, 'utf8')).to.equal('4\n5\n');
  });
});
