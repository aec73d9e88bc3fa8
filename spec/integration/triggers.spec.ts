import { expect } from 'chai';
import { request } from 'undici';
import type { Runtime } from '../../src/runtime.ts';
import { connect } from '../../src/store/couch.ts';
import { adminHeaders, couchUrl } from '../support/couch.ts';
import { RecordingDispatcher } from '../support/recording-dispatcher.ts';
import { expandBatch, type BatchDoc } from '../../src/activations/recorder.ts';
import { dayDbName } from '../../src/activations/record-days.ts';
import { activationTime } from '../../src/activations/reader.ts';
import { eventually, startRuntime } from '../support/runtime.ts';

const seedEvent = {
  _id: 'email_event',
  trigger: { '/send_email': { method: 'GET' } },
  workers: { send_email: { recipient: 'support@yourcompany.com' } },
};
const seedWorker = {
  _id: 'send_email',
  arguments: {},
  delegate: 'sendmail.js',
  type: 'node',
  _attachments: {
    'sendmail.js': { content_type: 'application/javascript', data: Buffer.from("require('./someOtherScript.js')").toString('base64') },
    'someOtherScript.js': { content_type: 'application/javascript', data: Buffer.from('module.exports = 1').toString('base64') },
  },
};

async function get(rt: Runtime, path: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}) {
  // The admin API needs an admin; triggers go without credentials unless a spec sends some.
  const headers = init.headers ?? (path.startsWith('/_lively/') ? adminHeaders() : undefined);
  const res = await request(rt.url + path, { method: (init.method ?? 'GET') as 'GET', body: init.body, headers });
  const text = await res.body.text();
  return { status: res.statusCode, body: text ? JSON.parse(text) : undefined };
}

describe('HTTP triggers through the runtime (recording dispatcher)', () => {
  const rec = new RecordingDispatcher(['node', 'python']);
  let rt: Runtime;

  before(async () => {
    rt = await startRuntime({ dispatchers: [rec] });
    await rt.db.events.insert(seedEvent);
    await rt.db.workers.insert(seedWorker);
    await rt.db.events.insert({
      _id: 'docs', trigger: [{ path: '/emit_document/:db/:docid', method: ['GET', 'POST'] }],
      workers: [{ name: 'send_email', parameters: { db: ':db', docid: ':docid' } }],
    });
    await rt.db.events.insert({ _id: 'files', trigger: { '/files/*': {} }, workers: { send_email: { file: '*' } } });
    await rt.db.events.insert({
      _id: 'paint_event', trigger: [{ path: '/paint', method: 'POST', parameters: { mode: 'fast', color: ':color' } }],
      workers: [{ name: 'send_email', arguments: { color: ':color' } }],
    });
    await eventually(() => rt.catalog.matcher.size >= 4, 5_000, 'events loaded');
  });
  after(() => rt.stop());

  it('GET /_events/email_event fires the seed event by id with the seed arguments and the HTTP message', async () => {
    const before = rec.messages.length;
    const r = await get(rt, '/_events/email_event?x=1', { headers: { 'x-probe': 'yes' } });
    expect(r.status).to.equal(202);
    expect(r.body).to.include({ ok: true });
    expect(r.body.activation).to.be.a('string');
    expect(r.body.workers).to.deep.equal(['send_email']);
    await rec.received(before + 1);
    const m = rec.messages[before]!;
    expect(m).to.include({ event: 'email_event', worker: 'send_email', trigger: 'http', method: 'GET', path: '/email_event', activation: r.body.activation });
    expect(m.arguments).to.deep.equal({ recipient: 'support@yourcompany.com' });
    // parameters read a query value as JSON where it is JSON (as the original did); request.query keeps the text
    expect(m.parameters).to.deep.equal({ x: 1, recipient: 'support@yourcompany.com' });
    expect(m.request!.query).to.deep.equal({ x: '1' });
    expect(m.request!.headers['x-probe']).to.equal('yes');
  });

  it('GET /_events/send_email fires it by its trigger path', async () => {
    const before = rec.messages.length;
    const r = await get(rt, '/_events/send_email');
    expect(r.status).to.equal(202);
    expect(r.body.events).to.deep.equal(['email_event']);
    await rec.received(before + 1);
    expect(rec.messages[before]!.arguments.recipient).to.equal('support@yourcompany.com');
    expect(rec.messages[before]!.path).to.equal('/send_email');
  });

  it('a request can add parameters but never override a configured argument', async () => {
    const r = await get(rt, '/_events/send_email?recipient=evil@example.com&extra=1&wait=true');
    expect(r.status).to.equal(200);
    expect(r.body.outcomes[0].result.echoed).to.deep.equal({ recipient: 'support@yourcompany.com' });
  });

  it('binds path segments and substitutes them into the arguments', async () => {
    const r = await get(rt, '/_events/emit_document/inbox/doc%201?wait=true');
    expect(r.status).to.equal(200);
    expect(r.body.outcomes[0].result.echoed).to.deep.equal({ db: 'inbox', docid: 'doc 1' });
  });

  it('binds the tail of /files/*', async () => {
    const r = await get(rt, '/_events/files/a/b.txt?wait=true');
    expect(r.body.outcomes[0].result.echoed).to.deep.equal({ file: 'a/b.txt' });
  });

  it('":color" binds from a JSON body and from the query string; a literal mismatch does not fire', async () => {
    const json = await get(rt, '/_events/paint?wait=true', { method: 'POST', body: JSON.stringify({ mode: 'fast', color: 'red' }), headers: { 'content-type': 'application/json' } });
    expect(json.status).to.equal(200);
    expect(json.body.outcomes[0].result.echoed).to.deep.equal({ color: 'red' });
    const query = await get(rt, '/_events/paint?mode=fast&color=blue&wait=true', { method: 'POST' });
    expect(query.body.outcomes[0].result.echoed).to.deep.equal({ color: 'blue' });
    const mismatch = await get(rt, '/_events/paint?mode=slow&color=blue', { method: 'POST' });
    expect(mismatch.status).to.equal(404);
  });

  it('fired by id, an event binds the ":name" parameters of its trigger too', async () => {
    const r = await get(rt, '/_events/paint_event?color=green&wait=true', { method: 'POST' });
    expect(r.status).to.equal(200);
    expect(r.body.outcomes[0].result.echoed).to.deep.equal({ color: 'green' });
  });

  it('405 names the allowed methods when the path matches but not the method; 404 when nothing matches', async () => {
    const r = await get(rt, '/_events/send_email', { method: 'DELETE' });
    expect(r.status).to.equal(405);
    expect(r.body.error).to.equal('LC_METHOD_NOT_ALLOWED');
    expect(r.body.reason).to.contain('GET');
    const byId = await get(rt, '/_events/email_event', { method: 'PUT' });
    expect(byId.status).to.equal(405);
    const none = await get(rt, '/_events/nothing/here');
    expect(none.status).to.equal(404);
    expect(none.body.error).to.equal('LC_NO_EVENT');
  });

  it('a method list accepts each listed method', async () => {
    expect((await get(rt, '/_events/emit_document/a/b', { method: 'POST' })).status).to.equal(202);
    expect((await get(rt, '/_events/emit_document/a/b', { method: 'GET' })).status).to.equal(202);
    expect((await get(rt, '/_events/emit_document/a/b', { method: 'PUT' })).status).to.equal(405);
  });

  it('an event naming a missing worker fires and reports the missing worker in its outcome', async () => {
    await rt.db.events.insert({ _id: 'ghost', trigger: { '/ghost': {} }, workers: { no_such_worker: {} } });
    await eventually(() => !!rt.catalog.get('ghost'), 5_000, 'ghost event');
    const r = await get(rt, '/_events/ghost?wait=true');
    expect(r.status).to.equal(200);
    expect(r.body.outcomes[0]).to.include({ worker: 'no_such_worker', status: 'error' });
    expect(r.body.outcomes[0].error.code).to.equal('LC_WORKER_NOT_FOUND');
  });

  it('editing, disabling and deleting an event takes effect without a restart', async () => {
    const doc = { _id: 'hot', trigger: { '/hot/one': {} }, workers: { send_email: { n: 1 } } };
    const ins = await rt.db.events.insert(doc);
    await eventually(async () => (await get(rt, '/_events/hot/one')).status === 202, 5_000, 'new event');
    const ed = await rt.db.events.insert({ ...doc, _rev: ins.rev, trigger: { '/hot/two': {} } });
    await eventually(async () => (await get(rt, '/_events/hot/two')).status === 202, 5_000, 'edited event');
    expect((await get(rt, '/_events/hot/one')).status).to.equal(404);
    const dis = await rt.db.events.insert({ ...doc, _rev: ed.rev, trigger: { '/hot/two': {} }, disabled: true });
    await eventually(async () => (await get(rt, '/_events/hot/two')).status === 404, 5_000, 'disabled event');
    await rt.db.events.destroy('hot', dis.rev);
    await eventually(() => !rt.catalog.get('hot'), 5_000, 'deleted event');
    expect((await get(rt, '/_events/hot')).status).to.equal(404);
  });

  it('writes an activation record for each firing to the logs database', async () => {
    const r = await get(rt, '/_events/email_event?wait=true');
    await rt.activationLog.flush();
    // In the day database of the activation's start, which its id carries.
    const page = await rt.nano.use(dayDbName(rt.config.dbPrefix, activationTime(r.body.activation)!)).list({ include_docs: true });
    const batches = page.rows.map((x) => x.doc as unknown as BatchDoc).filter((d) => d.type === 'activations');
    const rec = batches.flatMap(expandBatch).find((d) => d.activation === r.body.activation);
    expect(rec).to.exist;
    expect(rec!.events).to.deep.equal(['email_event']);
    expect(rec!.trigger).to.equal('http');
    expect(rec!.workers[0]).to.include({ worker: 'send_email', status: 'ok' });
    expect(rec!.workers[0]!.result).to.deep.equal({ echoed: { recipient: 'support@yourcompany.com' } });
  });
});

describe('invalid events and the status API', () => {
  let rt: Runtime;
  before(async () => {
    rt = await startRuntime({
      dispatchers: [new RecordingDispatcher()],
      // Written before init installs validation, as a document from an older deployment would be.
      before: async (prefix) => {
        const nano = connect(couchUrl());
        await nano.db.create(`${prefix}events`);
        const db = nano.use<Record<string, unknown>>(`${prefix}events`);
        await db.insert({ _id: 'broken', trigger: { '/broken': { method: 42 } }, workers: {} });
        await db.insert(seedEvent);
      },
    });
  });
  after(() => rt.stop());

  it('GET /_lively/status lists a malformed event with its reason while the others work', async () => {
    const status = await get(rt, '/_lively/status');
    expect(status.status).to.equal(200);
    const invalid = status.body.events.invalid as Array<{ id: string; reason: string }>;
    expect(invalid.map((x) => x.id)).to.deep.equal(['broken']);
    expect(invalid[0]!.reason).to.contain('method');
    expect(status.body.events.loaded).to.equal(1);
    expect((await get(rt, '/_events/email_event')).status).to.equal(202);
  });

  it('validate_doc_update rejects a malformed event on write with 403 and a reason naming the field', async () => {
    const err = await rt.db.events.insert({ _id: 'bad2', trigger: { '/x': {} }, workers: 'nope' }).then(() => undefined, (e: unknown) => e as { statusCode: number; message: string });
    expect(err, 'the write was refused').to.exist;
    expect(err!.statusCode).to.equal(403);
    expect(err!.message).to.contain('workers');
  });

  it('GET /_lively/activations?limit=N lists the newest records first; a bad limit is 400', async () => {
    const a = await get(rt, '/_events/email_event?wait=true');
    const b = await get(rt, '/_events/email_event?wait=true');
    const r = await get(rt, '/_lively/activations?limit=2');
    expect(r.status).to.equal(200);
    expect(r.body.activations.map((x: { activation: string }) => x.activation)).to.deep.equal([b.body.activation, a.body.activation]);
    expect(r.body.activations[0].workers[0].error.code).to.equal('LC_WORKER_NOT_FOUND');
    expect((await get(rt, '/_lively/activations?limit=0')).status).to.equal(400);
  });

  it('GET /_lively/metrics answers Prometheus text with the activation counters', async () => {
    await get(rt, '/_events/email_event?wait=true');
    const res = await request(rt.url + '/_lively/metrics', { headers: adminHeaders() });
    const text = await res.body.text();
    expect(res.statusCode).to.equal(200);
    expect(res.headers['content-type']).to.contain('text/plain; version=0.0.4');
    expect(text).to.contain('# TYPE livelycouch_activations_fired_total counter');
    expect(Number(/^livelycouch_activations_fired_total (\d+)$/m.exec(text)![1])).to.be.at.least(1);
    // This suite has no worker documents: the outcome is an error (LC_WORKER_NOT_FOUND).
    expect(text).to.match(/^livelycouch_worker_outcomes_total\{status="error"\} [1-9]\d*$/m);
    expect(text).to.match(/^livelycouch_worker_outcomes_total\{status="ok"\} 0$/m);
    expect(text).to.match(/^livelycouch_events_invalid 1$/m);
  });

  it('GET /_lively/health reports the store', async () => {
    const h = await get(rt, '/_lively/health');
    expect(h.status).to.equal(200);
    expect(h.body).to.include({ ok: true, store: true });
  });
});
