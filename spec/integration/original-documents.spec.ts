/**
 * The original LivelyCouch's own event documents (spec/fixtures/livelycouch-2010) load unchanged
 * — by the store's validate_doc_update and by the runtime — and each of their triggers fires its
 * workers as it did there: a worker entry's `"forward"` reaches the worker with the message, and
 * query values are read as JSON when they are JSON (`?timerid=7` is the number 7), while
 * `request.query` keeps the strings as sent.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import type { Runtime } from '../../src/runtime.ts';
import { eventually, startRuntime } from '../support/runtime.ts';

const fixtures = fileURLToPath(new URL('../fixtures/livelycouch-2010/', import.meta.url));
const docs = ['event-subscribers', 'event_template'].flatMap((dir) => readdirSync(path.join(fixtures, dir))
  .filter((f) => f.endsWith('.json'))
  .map((f) => ({ id: f.replace(/\.json$/, ''), doc: JSON.parse(readFileSync(path.join(fixtures, dir, f), 'utf8')) as Record<string, any> })));

// Each worker answers with what it was given.
const echo = { content_type: 'application/javascript', data: Buffer.from('module.exports = (msg) => ({ parameters: msg.parameters, forward: msg.forward === undefined ? null : msg.forward, query: msg.request ? msg.request.query : null });').toString('base64') };

interface Outcome { worker: string; status: string; result?: { parameters: Record<string, unknown>; forward: string[] | null; query: Record<string, unknown> | null } }

describe('the original LivelyCouch\'s event documents', function () {
  this.timeout(60_000);
  let rt: Runtime;

  before(async () => {
    rt = await startRuntime();
    const names = new Set(docs.flatMap(({ doc }) => (doc.workers as Array<{ name: string }>).map((w) => w.name)));
    await rt.db.workers.bulk({ docs: [...names].map((name) => ({ _id: name, type: 'node', delegate: 'index.js', _attachments: { 'index.js': echo } })) });
  });
  after(() => rt?.stop());

  it('every one is accepted by the store and loaded by the runtime unchanged (its file name as _id)', async () => {
    expect(docs.length).to.equal(17);
    const rows = await rt.db.events.bulk({ docs: docs.map(({ id, doc }) => ({ _id: id, ...doc })) });
    expect(rows.filter((r) => r.error !== undefined), JSON.stringify(rows)).to.deep.equal([]);
    await eventually(() => docs.every(({ id }) => rt.catalog.get(id) !== undefined), 10_000, 'every document loaded');
  });

  async function fire(p: string, method = 'GET'): Promise<Outcome[]> {
    const res = await request(`${rt.url}/_events${p}${p.includes('?') ? '&' : '?'}wait=true`, { method: method as 'GET' });
    const body = await res.body.json() as { outcomes?: Outcome[] };
    expect(res.statusCode, `${method} ${p}: ${JSON.stringify(body)}`).to.equal(200);
    return body.outcomes!;
  }

  it('each trigger of each document fires every worker the document names', async () => {
    for (const { id, doc } of docs) {
      for (const t of doc.trigger as Array<{ path: string; method?: string; parameters?: Record<string, unknown> }>) {
        const p = t.path.split('/').map((s) => (s.startsWith(':') ? `v_${s.slice(1)}` : s)).join('/');
        const query = new URLSearchParams(Object.entries(t.parameters ?? {}).map(([k, v]) => [k, typeof v === 'string' && v.startsWith(':') ? '7' : String(v)]));
        const outcomes = await fire(`${p}${query.size ? `?${query}` : ''}`, t.method ?? 'GET');
        for (const w of doc.workers as Array<{ name: string }>) {
          const o = outcomes.find((x) => x.worker === w.name);
          expect(o?.status, `${id} ${t.path} → ${w.name}: ${JSON.stringify(outcomes)}`).to.equal('ok');
        }
      }
    }
  });

  it('"forward" reaches the worker with the message, beside the parameters the event maps', async () => {
    const [email] = (await fire('/email/send')).filter((o) => o.worker === 'email');
    expect(email!.result!.forward).to.deep.equal(['from', 'to']);
    expect(email!.result!.parameters).to.include({ from: 'mail@livelycouch.org', to: 'mirko.kiefer@arcor.de', subject: 'LivelyCouch' });
    const [other] = (await fire('/hello_world')).filter((o) => o.worker === 'hello_world');
    expect(other!.result!.forward, 'no forward, none given').to.equal(null);
  });

  it('query values are JSON where they are JSON, in parameters and in what bindings carry; request.query keeps the strings', async () => {
    const [timer] = (await fire('/timer?timerid=7')).filter((o) => o.worker === 'timer');
    expect(timer!.result!.parameters).to.include({ timerid: 7, interval: 2, event: 'test_timer' });
    expect(timer!.result!.query).to.deep.equal({ timerid: '7' });
    const [sample] = (await fire('/some_event_path?some_expected_param=some_value&another_param=%7B%22a%22%3A%5B1%2Ctrue%5D%7D&s=hello&n=-2.5&z=007')).filter((o) => o.worker === 'worker_name');
    expect(sample!.result!.forward).to.deep.equal(['some_dynamic_param']);
    expect(sample!.result!.parameters).to.deep.include({ some_fixed_param: 'some_fixed_value', some_dynamic_param: { a: [1, true] }, s: 'hello', n: -2.5, z: '007' });
    expect(sample!.result!.query).to.deep.include({ another_param: '{"a":[1,true]}', n: '-2.5' });
    const [doc] = (await fire('/emit_document/mydb/doc1')).filter((o) => o.worker === 'emit_document');
    expect(doc!.result!.parameters).to.include({ db: 'mydb', docid: 'doc1', event: 'test' });
  });
});
