/**
 * The activation records API through the runtime, with real workers in the thread pool:
 * listing, one record, and firing an activation again.
 */
import { expect } from 'chai';
import { request } from 'undici';
import type { Runtime } from '../../src/runtime.ts';
import { newActivationId } from '../../src/core/activation-id.ts';
import { eventually, startRuntime } from '../support/runtime.ts';
import { adminHeaders } from '../support/couch.ts';

const att = (code: string) => ({ content_type: 'application/javascript', data: Buffer.from(code).toString('base64') });
const broken = `module.exports = async (msg) => { console.log('charging ' + msg.parameters.id + ' ' + msg.parameters.amount); throw new Error('broken on purpose'); };`;
const fixed = `module.exports = async (msg) => ({ charged: msg.parameters.amount, id: msg.parameters.id });`;

async function call(rt: Runtime, path: string, method = 'GET', body?: unknown) {
  const res = await request(rt.url + path, {
    method: method as 'GET',
    // The /_lively API is for admins; /_events triggers here are public.
    headers: { ...adminHeaders(), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.body.text();
  return { status: res.statusCode, body: (text ? JSON.parse(text) : undefined) as Record<string, any> };
}

describe('the activation records API', function () {
  this.timeout(30_000);
  let rt: Runtime;

  before(async () => {
    rt = await startRuntime();
    await rt.db.workers.bulk({ docs: [
      { _id: 'charge', type: 'node', delegate: 'index.js', _attachments: { 'index.js': att(broken) } },
      { _id: 'hello', type: 'node', delegate: 'index.js', _attachments: { 'index.js': att('module.exports = async () => ({ hi: true });') } },
      { _id: 'emitter', type: 'node', delegate: 'index.js', _attachments: { 'index.js': att(`module.exports = async (msg, ctx) => { ctx.emit('done', { n: 1 }); return {}; };`) } },
    ] });
    await rt.db.events.bulk({ docs: [
      { _id: 'charge', trigger: [{ path: '/charge/:id', method: ['POST'] }], workers: [{ name: 'charge', parameters: { id: ':id' } }] },
      { _id: 'hello', trigger: { '/hello': {} }, workers: { hello: {} } },
      { _id: 'doomed', trigger: { '/doomed': {} }, workers: { hello: {} } },
      { _id: 'emit', trigger: { '/emit': {} }, workers: { emitter: {} } },
      { _id: 'on_done', trigger: { '/emitter/done': {} }, workers: { hello: {} } },
    ] });
    await eventually(() => rt.catalog.matcher.size >= 5, 5_000, 'events loaded');
  });
  after(() => rt.stop());

  it('a failing worker\'s record keeps its error, logs and input; once the worker is fixed, POST …/rerun fires the same event with that input, and the new record says rerunOf', async () => {
    const failed = await call(rt, '/_events/charge/42?wait=true&note=x', 'POST', { amount: 5 });
    expect(failed.status).to.equal(200);
    expect(failed.body.outcomes[0].status).to.equal('error');
    const id = failed.body.activation as string;

    // Visible at once: the read flushes what is buffered first.
    const rec = await call(rt, `/_lively/activations/${id}`);
    expect(rec.status).to.equal(200);
    expect(rec.body).to.include({ activation: id, trigger: 'http', path: '/charge/42', method: 'POST' });
    expect(rec.body.events).to.deep.equal(['charge']);
    expect(rec.body.workers[0].error.message).to.contain('broken on purpose');
    expect(rec.body.workers[0].error.stack).to.match(/^Error: broken on purpose\n\s+at /);
    expect(rec.body.workers[0].logs.map((l: { msg: string }) => l.msg)).to.include('charging 42 5');
    expect(rec.body.input).to.deep.include({ trigger: 'http', method: 'POST', path: '/charge/42', params: { note: 'x', amount: 5 } });
    expect(rec.body.input.request.body).to.deep.equal({ amount: 5 });
    expect(rec.body.rerunOf).to.equal(undefined);

    const doc = await rt.db.workers.get('charge');
    await rt.db.workers.insert({ ...doc, _attachments: { 'index.js': att(fixed) } });
    let again: Awaited<ReturnType<typeof call>> | undefined;
    await eventually(async () => (again = await call(rt, `/_lively/activations/${id}/rerun?wait=true`, 'POST')).body.outcomes?.[0]?.status === 'ok', 10_000, 'the fixed worker');
    expect(again!.status).to.equal(200);
    expect(again!.body).to.include({ ok: true });
    expect(again!.body.events).to.deep.equal(['charge']);
    expect(again!.body.activation).to.not.equal(id);
    expect(again!.body.outcomes[0].result).to.deep.equal({ charged: 5, id: '42' });

    const rerun = await call(rt, `/_lively/activations/${again!.body.activation}`);
    expect(rerun.body).to.include({ rerunOf: id, path: '/charge/42', trigger: 'http' });
    expect(rerun.body.workers[0].status).to.equal('ok');

    const quick = await call(rt, `/_lively/activations/${id}/rerun`, 'POST');
    expect(quick.status).to.equal(202);
    expect(quick.body).to.include({ ok: true });
    expect(quick.body.workers).to.deep.equal(['charge']);
    expect(quick.body.outcomes).to.equal(undefined);
  });

  it('an unknown activation is 404 to GET and to rerun; one whose input was not kept is 409; one whose event was deleted since is 404 naming it', async () => {
    const unknown = newActivationId();
    const get = await call(rt, `/_lively/activations/${unknown}`);
    expect(get.status).to.equal(404);
    expect(get.body.error).to.equal('LC_NOT_FOUND');
    expect((await call(rt, `/_lively/activations/${unknown}/rerun`, 'POST')).status).to.equal(404);
    expect((await call(rt, '/_lively/activations/not-an-id')).status).to.equal(404);

    // An ok activation past the batch's detail budget keeps no input.
    const bare = newActivationId();
    rt.activationLog.record({ activation: bare, events: ['hello'], trigger: 'http', path: '/hello', method: 'GET', started: Date.now(), durationMs: 1, workers: [{ worker: 'hello', status: 'ok', logs: [], durationMs: 1 }] });
    const conflict = await call(rt, `/_lively/activations/${bare}/rerun`, 'POST');
    expect(conflict.status).to.equal(409);
    expect(conflict.body.error).to.equal('LC_NOT_RERUNNABLE');
    expect(conflict.body.reason).to.contain('input was not kept');

    const doomed = await call(rt, '/_events/doomed?wait=true');
    expect(doomed.body.outcomes[0].status).to.equal('ok');
    const ev = await rt.db.events.get('doomed');
    await rt.db.events.destroy('doomed', ev._rev);
    await eventually(() => !rt.catalog.get('doomed'), 5_000, 'the event gone');
    const gone = await call(rt, `/_lively/activations/${doomed.body.activation}/rerun?wait=true`, 'POST');
    expect(gone.status).to.equal(404);
    expect(gone.body.error).to.equal('LC_NO_EVENT');
    expect(gone.body.reason).to.contain('"doomed"');
  });

  it('GET /_lively/activations filters by event and status, pages with next, and is 400 for a bad parameter, naming it', async () => {
    const a = await call(rt, '/_events/hello?wait=true');
    const b = await call(rt, '/_events/hello?wait=true');
    const list = await call(rt, '/_lively/activations?event=hello&limit=1');
    expect(list.status).to.equal(200);
    expect(list.body.activations.map((r: { activation: string }) => r.activation)).to.deep.equal([b.body.activation]);
    const next = await call(rt, `/_lively/activations?event=hello&limit=1&before=${encodeURIComponent(list.body.next)}`);
    expect(next.body.activations.map((r: { activation: string }) => r.activation)).to.deep.equal([a.body.activation]);
    const errors = await call(rt, '/_lively/activations?status=error&limit=100');
    expect(errors.body.activations.length).to.be.at.least(1);
    for (const r of errors.body.activations) expect(r.workers.some((w: { status: string }) => w.status === 'error')).to.equal(true);
    const future = await call(rt, `/_lively/activations?since=${new Date(Date.now() + 3_600_000).toISOString()}`);
    expect(future.body).to.deep.equal({ activations: [] });

    for (const [query, param] of [
      ['limit=0', 'limit'], ['limit=abc', 'limit'], ['limit=1001', 'limit'], ['status=failed', 'status'], ['since=yesterday', 'since'],
      ['event=', 'event'], ['worker=', 'worker'], ['before=zzz', 'before'], ['evnt=hello', 'evnt'], ['event=a&event=b', 'event'],
    ]) {
      const r = await call(rt, `/_lively/activations?${query}`);
      expect(r.status, query).to.equal(400);
      expect(r.body.error).to.equal('LC_BAD_REQUEST');
      expect(r.body.reason, query).to.contain(param);
    }
  });

  it('methods and paths: POST to the list or a record is 405, GET of …/rerun is 405, deeper paths are 404', async () => {
    expect((await call(rt, '/_lively/activations', 'POST')).status).to.equal(405);
    const id = (await call(rt, '/_events/hello?wait=true')).body.activation;
    const post = await call(rt, `/_lively/activations/${id}`, 'POST');
    expect(post.status).to.equal(405);
    const rerunGet = await call(rt, `/_lively/activations/${id}/rerun`);
    expect(rerunGet.status).to.equal(405);
    expect(rerunGet.body.reason).to.contain('POST');
    expect((await call(rt, `/_lively/activations/${id}/other`)).status).to.equal(404);
  });

  it('an activation fired by a changes trigger is rerun with its change: the worker sees the same change again', async () => {
    const inbox = `${rt.config.dbPrefix}inbox`;
    await rt.nano.db.create(inbox);
    await rt.db.workers.insert({ _id: 'inbox', type: 'node', delegate: 'index.js', _attachments: { 'index.js': att(`module.exports = async () => { throw new Error('not yet'); };`) } });
    await rt.db.events.insert({ _id: 'on_inbox', trigger: [{ changes: { db: inbox, include_docs: true } }], workers: { inbox: {} } });
    await eventually(() => rt.changesTriggers!.feeds('on_inbox') === 1, 5_000, 'changes feed started');
    await rt.nano.use<Record<string, unknown>>(inbox).insert({ _id: 'm1', text: 'one' });
    let failed: Record<string, any> | undefined;
    await eventually(async () => !!(failed = (await call(rt, '/_lively/activations?event=on_inbox&status=error&limit=1')).body.activations[0]), 10_000, 'the failed activation');
    expect(failed!.trigger).to.equal('changes');
    expect(failed!.input.change.id).to.equal('m1');
    expect(failed!.input.params.doc.text).to.equal('one');

    const doc = await rt.db.workers.get('inbox');
    await rt.db.workers.insert({ ...doc, _attachments: { 'index.js': att('module.exports = async (msg) => ({ id: msg.change.id, text: msg.parameters.doc.text, trigger: msg.trigger });') } });
    let again: Awaited<ReturnType<typeof call>> | undefined;
    await eventually(async () => (again = await call(rt, `/_lively/activations/${failed!.activation}/rerun?wait=true`, 'POST')).body.outcomes?.[0]?.status === 'ok', 10_000, 'the fixed worker');
    expect(again!.body.outcomes[0].result).to.deep.equal({ id: 'm1', text: 'one', trigger: 'changes' });
  });

  it('the activation of an event emitted by a worker names the emitting activation as its parent', async () => {
    const root = await call(rt, '/_events/emit?wait=true');
    expect(root.body.outcomes[0].status).to.equal('ok');
    let child: Record<string, any> | undefined;
    await eventually(async () => !!(child = (await call(rt, '/_lively/activations?event=on_done&limit=1')).body.activations[0]), 5_000, 'the emitted event\'s activation');
    expect(child!.parent).to.equal(root.body.activation);
    expect(child!.trigger).to.equal('event');
    expect((await call(rt, `/_lively/activations/${root.body.activation}`)).body.parent).to.equal(undefined);
  });
});
