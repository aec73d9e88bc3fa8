/**
 * The web console's routes through a running runtime, without a browser: who is let in
 * (anonymous and non-admin visitors are sent to the sign-in page or refused), what the API
 * answers and refuses, that worker documents reach it without values of their environment,
 * and that the live stream carries the history, a tick a second and activations as they finish.
 */
import { expect } from 'chai';
import { request } from 'undici';
import type { Runtime } from '../../src/runtime.ts';
import { adminHeaders, dropPrefix, uniquePrefix } from '../support/couch.ts';
import { eventually, startRuntime } from '../support/runtime.ts';
import { dropUsers, headersOf, makeUser, type User } from '../security/support.ts';

const att = (code: string) => ({ content_type: 'application/javascript', data: Buffer.from(code).toString('base64') });

describe('console routes', function () {
  this.timeout(60_000);
  const prefix = uniquePrefix();
  let rt: Runtime;
  let plain: User;

  before(async () => {
    plain = await makeUser(prefix, 'plain');
    rt = await startRuntime({ config: { dbPrefix: prefix } });
    await rt.db.workers.insert({ _id: 'w', type: 'node', delegate: 'index.js', env: { TOKEN: 'env-value-not-shown' }, _attachments: { 'index.js': att('module.exports = (msg) => ({ n: msg.parameters.n });') } } as never);
    await rt.db.events.bulk({ docs: [
      { _id: 'hit', trigger: { '/hit': { method: ['GET', 'POST'] } }, workers: { w: {} } },
      { _id: 'tick', trigger: [{ schedule: { every: '1h' } }], workers: { w: {} } },
      { _id: 'watch', trigger: [{ changes: { db: `${prefix}watched` } }], workers: { w: {} } },
    ] });
    await eventually(() => rt.catalog.matcher.size >= 3, 10_000, 'events loaded');
  });

  after(async () => {
    await rt?.stop();
    await dropPrefix(prefix);
    if (plain) await dropUsers([plain]);
  });

  async function get(path: string, headers: Record<string, string> = adminHeaders()): Promise<{ status: number; headers: Record<string, unknown>; body: any }> {
    const res = await request(`${rt.url}${path}`, { headers });
    const text = await res.body.text();
    let body: unknown = text;
    try { body = JSON.parse(text); } catch { /* not JSON */ }
    return { status: res.statusCode, headers: res.headers, body };
  }

  async function putDisabled(id: string, body: string, contentType = 'application/json'): Promise<{ status: number; body: any }> {
    const res = await request(`${rt.url}/_lively/console/events/${id}/disabled`, { method: 'PUT', headers: { ...adminHeaders(), 'content-type': contentType }, body });
    return { status: res.statusCode, body: await res.body.json() };
  }

  describe('who gets in', () => {
    it('a console page without credentials goes to the sign-in page; with a non-admin user, with the reason', async () => {
      const anon = await get('/_lively/ui/', {});
      expect(anon.status).to.equal(303);
      expect(anon.headers.location).to.equal('/_lively/ui/signin');
      const user = await get('/_lively/ui/', headersOf(plain));
      expect(user.status).to.equal(303);
      expect(user.headers.location).to.equal('/_lively/ui/signin?reason=forbidden');
      // the redirect is for pages: the API answers with the error
      expect((await get('/_lively/console/events', {})).status).to.equal(401);
      expect((await get('/_lively/console/events', headersOf(plain))).status).to.equal(403);
      expect((await get('/_lively/stream', headersOf(plain))).status).to.equal(403);
    });

    it('the sign-in page and its files are served to anyone, with a policy that loads nothing from elsewhere', async () => {
      const page = await get('/_lively/ui/signin', {});
      expect(page.status).to.equal(200);
      expect(page.headers['content-type']).to.equal('text/html; charset=utf-8');
      expect(page.body).to.contain('/_lively/ui/assets/signin.js').and.not.contain('app.js');
      expect(page.headers['content-security-policy']).to.contain("default-src 'self'").and.contain("frame-ancestors 'none'");
      expect(page.headers['x-frame-options']).to.equal('DENY');
      expect((await get('/_lively/ui/assets/signin.js', {})).status).to.equal(200);
      const css = await get('/_lively/ui/assets/console.css', {});
      expect(css.status).to.equal(200);
      expect(css.headers['content-type']).to.equal('text/css; charset=utf-8');
    });

    it('the console itself is for admins: the page, its script', async () => {
      const page = await get('/_lively/ui/');
      expect(page.status).to.equal(200);
      expect(page.body).to.contain('/_lively/ui/assets/app.js');
      const app = await get('/_lively/ui/assets/app.js');
      expect(app.status).to.equal(200);
      expect(app.headers['content-type']).to.equal('text/javascript; charset=utf-8');
      expect((await get('/_lively/ui/assets/app.js', {})).status).to.equal(401);
      expect((await get('/_lively/ui/assets/app.js', headersOf(plain))).status).to.equal(403);
    });

    it('/_lively/ui redirects to /_lively/ui/; unknown console pages and files are 404; a POST to a page is 405', async () => {
      const bare = await get('/_lively/ui');
      expect(bare.status).to.equal(308);
      expect(bare.headers.location).to.equal('/_lively/ui/');
      expect((await get('/_lively/ui/nope')).body.error).to.equal('LC_NOT_FOUND');
      expect((await get('/_lively/ui/assets/evil.js')).status).to.equal(404);
      expect((await get('/_lively/ui/assets/../../package.json')).status).to.equal(404);
      expect((await get('/_lively/console/nope')).status).to.equal(404);
      const post = await request(`${rt.url}/_lively/ui/`, { method: 'POST', headers: adminHeaders() });
      expect(post.statusCode).to.equal(405);
      await post.body.dump();
    });
  });

  describe('the API', () => {
    it('lists events with their triggers: HTTP paths and methods, a schedule with its next tick, a changes database', async () => {
      const { status, body } = await get('/_lively/console/events');
      expect(status).to.equal(200);
      const byId = Object.fromEntries(body.events.map((e: any) => [e.id, e]));
      expect(byId.hit.triggers).to.deep.equal([{ kind: 'http', path: '/hit', methods: ['GET', 'POST'] }]);
      expect(byId.hit).to.include({ disabled: false, fired: 0, errors: 0, perMinute: 0 });
      expect(byId.tick.triggers[0]).to.include({ kind: 'schedule', every: 3_600_000 });
      expect(byId.tick.triggers[0].next).to.be.above(Date.now()).and.at.most(Date.now() + 3_600_000);
      expect(byId.watch.triggers[0]).to.include({ kind: 'changes', db: `${prefix}watched` });
    });

    it('counts an event as it fires: last fired, errors, the last minute', async () => {
      const res = await request(`${rt.url}/_events/hit?wait=true&n=1`);
      expect(res.statusCode).to.equal(200);
      await res.body.dump();
      const { body } = await get('/_lively/console/events');
      const hit = body.events.find((e: any) => e.id === 'hit');
      expect(hit).to.include({ fired: 1, errors: 0, perMinute: 1, lastStatus: 'ok' });
      expect(hit.lastFired).to.be.a('number');
    });

    it('disables an event (its trigger is then refused) and enables it again', async () => {
      const off = await putDisabled('hit', '{"disabled":true}');
      expect(off.status).to.equal(200);
      expect(off.body).to.include({ ok: true, id: 'hit', disabled: true });
      expect((await rt.db.events.get('hit') as any).disabled).to.equal(true);
      await eventually(() => rt.catalog.get('hit')?.disabled === true, 5_000, 'disabled event loaded');
      const refused = await request(`${rt.url}/_events/hit`);
      expect(refused.statusCode).to.equal(404);
      expect((await refused.body.json() as any).error).to.equal('LC_NO_EVENT');
      const on = await putDisabled('hit', '{"disabled":false}');
      expect(on.body).to.include({ ok: true, disabled: false });
      expect(await rt.db.events.get('hit')).not.to.have.property('disabled');
      await eventually(() => rt.catalog.get('hit')?.disabled === false, 5_000, 'enabled event loaded');
      const fired = await request(`${rt.url}/_events/hit`);
      expect(fired.statusCode).to.equal(202);
      await fired.body.dump();
    });

    it('refuses a body that is not {"disabled": boolean} as JSON, an unknown event, and GET', async () => {
      const before = (await rt.db.events.get('hit'))._rev;
      expect((await putDisabled('hit', 'disabled=true', 'application/x-www-form-urlencoded')).status, 'a form from another site').to.equal(400);
      expect((await putDisabled('hit', '{"disabled":"yes"}')).body.reason).to.match(/\{"disabled": true\}/);
      expect((await putDisabled('hit', '{"disabled":true,"extra":1}')).status).to.equal(400);
      expect((await putDisabled('hit', '{not json')).status).to.equal(400);
      expect((await putDisabled('nobody', '{"disabled":true}')).status).to.equal(404);
      expect((await get('/_lively/console/events/hit/disabled')).status).to.equal(405);
      expect((await rt.db.events.get('hit'))._rev, 'nothing was written').to.equal(before);
    });

    it('lists workers with the names of their environment variables, never the values; one worker with its source', async () => {
      const { body } = await get('/_lively/console/workers');
      const w = body.workers.find((x: any) => x.id === 'w');
      expect(w).to.include({ type: 'node', isolation: 'thread', delegate: 'index.js' });
      expect(w.env).to.deep.equal(['TOKEN']);
      expect(JSON.stringify(body)).not.to.contain('env-value-not-shown');
      expect(body.dispatchers.map((d: any) => d.name)).to.include('thread');
      expect(body.memory.rss).to.be.above(0);
      const one = await get('/_lively/console/workers/w');
      expect(one.body.source).to.equal('module.exports = (msg) => ({ n: msg.parameters.n });');
      expect(one.body.attachments).to.deep.equal([{ name: 'index.js', contentType: 'application/javascript', length: one.body.source.length }]);
      expect(JSON.stringify(one.body)).not.to.contain('env-value-not-shown');
      expect((await get('/_lively/console/workers/nobody')).status).to.equal(404);
    });

    it('describes the store: the databases of this runtime with sizes, and the changes feeds', async () => {
      await rt.nano.db.create(`${prefix}watched`).catch(() => undefined);
      const { body } = await get('/_lively/console/store');
      expect(body.store).to.include({ up: true, prefix });
      const names = body.databases.map((d: any) => d.name);
      expect(names).to.include.members([`${prefix}events`, `${prefix}workers`, `${prefix}logs`]);
      expect(names.every((n: string) => n.startsWith(prefix))).to.equal(true);
      const events = body.databases.find((d: any) => d.name === `${prefix}events`);
      expect(events.docs).to.be.at.least(3);
      expect(body.feeds.map((f: any) => f.event)).to.include('watch');
    });
  });

  describe('the live stream', () => {
    it('sends the history, then activations as they finish, in batches', async () => {
      const ac = new AbortController();
      const res = await request(`${rt.url}/_lively/stream`, { headers: adminHeaders(), signal: ac.signal });
      expect(res.statusCode).to.equal(200);
      expect(res.headers['content-type']).to.equal('text/event-stream; charset=utf-8');
      let text = '';
      const reading = (async () => {
        try { for await (const chunk of res.body) text += chunk.toString(); } catch { /* aborted */ }
      })();
      await eventually(() => text.includes('event: history'), 5_000, 'history');
      expect(rt.console.feed.open).to.equal(1);
      const fired = await request(`${rt.url}/_events/hit?n=7`, { method: 'POST' });
      const { activation } = await fired.body.json() as { activation: string };
      await eventually(() => text.includes(activation), 5_000, 'the activation in the stream');
      const batch = text.split('\n\n').find((m) => m.includes(activation))!;
      expect(batch).to.match(/^event: activations\n/);
      const data = JSON.parse(batch.split('\ndata: ')[1]!);
      expect(data.activations.find((a: any) => a.activation === activation)).to.include({ status: 'ok', trigger: 'http', path: '/hit', method: 'POST' });
      // summaries only: no results or inputs
      expect(batch).not.to.contain('"result"').and.not.to.contain('"input"');
      await eventually(() => text.includes('event: tick'), 5_000, 'a tick');
      ac.abort();
      await reading;
      await eventually(() => rt.console.feed.open === 0, 5_000, 'the stream closed');
    });
  });
});
