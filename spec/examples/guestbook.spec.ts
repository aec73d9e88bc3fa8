/**
 * examples/guestbook deployed as a user would, and used as its page uses it: a JSON API with
 * CORS over a CouchDB database (validation errors as 400), and an HTML page served by a worker.
 */
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { request } from 'undici';
import type { Runtime } from '../../src/runtime.ts';
import { deployPlan, readApp } from '../../src/core/deploy.ts';
import { connect } from '../../src/store/couch.ts';
import { couchUrl, dropPrefix } from '../support/couch.ts';
import { eventually, startRuntime } from '../support/runtime.ts';

const appDir = fileURLToPath(new URL('../../examples/guestbook', import.meta.url));

describe('examples/guestbook: a JSON API with CORS and a page, served by workers', function () {
  this.timeout(60_000);
  let rt: Runtime;

  async function api(method: string, body?: unknown, headers: Record<string, string> = {}) {
    const res = await request(`${rt.url}/_events/api/entries`, {
      method: method as 'GET',
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  }

  before(async () => {
    rt = await startRuntime();
    const db = `${rt.config.dbPrefix}guestbook`;
    await connect(couchUrl()).db.create(db);
    const plan = await readApp(appDir);
    // the app's database, under this spec's prefix
    const entries = plan.find((p) => p.kind === 'worker' && p.id === 'entries')!;
    entries.doc.arguments = { ...(entries.doc.arguments as object), db };
    const report = await deployPlan(plan, rt.db.events, rt.db.workers);
    expect(report.steps.map((s) => `${s.kind} ${s.id}`).sort()).to.deep.equal(['event entries', 'event entry', 'event page', 'worker entries', 'worker page']);
    await eventually(() => rt.catalog.get('entry') !== undefined && rt.catalog.get('page') !== undefined, 10_000, 'events loaded');
  });

  after(async () => {
    await rt?.stop();
    if (rt) await dropPrefix(rt.config.dbPrefix);
  });

  it('GET /api/entries lists nothing at first', async () => {
    const r = await api('GET');
    expect(r.status).to.equal(200);
    expect(r.headers['content-type']).to.equal('application/json');
    expect(r.body).to.deep.equal({ entries: [] });
  });

  it('POST with problems is a 400 naming each, and stores nothing', async () => {
    const r = await api('POST', { name: ' ', message: 'x'.repeat(501) });
    expect(r.status).to.equal(400);
    expect(r.body).to.deep.equal({ error: 'invalid entry', problems: ['name: is required (text)', 'message: at most 500 characters'] });
    const notObject = await api('POST', ['Ada']);
    expect(notObject.status).to.equal(400);
    expect(notObject.body.problems[0]).to.contain('must be a JSON object');
    expect((await api('GET')).body.entries).to.deep.equal([]);
  });

  it('POST stores an entry (201 with its location); GET lists the newest first', async () => {
    const first = await api('POST', { name: 'Ada', message: 'First!' });
    expect(first.status).to.equal(201);
    expect(first.body).to.include({ name: 'Ada', message: 'First!', type: 'entry' });
    expect(first.headers.location).to.equal(`/_events/api/entries/${encodeURIComponent(first.body.id)}`);
    await new Promise((r) => setTimeout(r, 5));
    const second = await api('POST', { name: 'Grace', message: 'Second' });
    expect(second.status).to.equal(201);
    const list = await api('GET');
    expect(list.body.entries.map((e: any) => e.name)).to.deep.equal(['Grace', 'Ada']);
    expect(list.headers['cache-control']).to.equal('no-store');
    const one = await request(`${rt.url}${first.headers.location}`);
    expect(one.statusCode).to.equal(200);
    expect(await one.body.json()).to.deep.equal({ id: first.body.id, name: 'Ada', message: 'First!', created: first.body.created });
    const none = await request(`${rt.url}/_events/api/entries/entry-nope`);
    expect(none.statusCode).to.equal(404);
    expect(await none.body.json()).to.deep.equal({ error: 'no such entry' });
  });

  it('a page on a listed origin may call it (preflight and request); another origin gets no CORS headers', async () => {
    const fired = rt.firing.fired;
    const pre = await request(`${rt.url}/_events/api/entries`, { method: 'OPTIONS', headers: { origin: 'http://localhost:8080', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
    await pre.body.dump();
    expect(pre.statusCode).to.equal(204);
    expect(pre.headers).to.include({ 'access-control-allow-origin': 'http://localhost:8080', 'access-control-allow-headers': 'content-type', 'access-control-max-age': '600' });
    expect(rt.firing.fired).to.equal(fired);
    const listed = await api('GET', undefined, { origin: 'http://localhost:8080' });
    expect(listed.headers['access-control-allow-origin']).to.equal('http://localhost:8080');
    const other = await api('GET', undefined, { origin: 'https://elsewhere.example' });
    expect(other.status).to.equal(200);
    expect(other.headers['access-control-allow-origin']).to.equal(undefined);
  });

  it('GET /guestbook is the HTML page, served by an isolate worker', async () => {
    const res = await request(`${rt.url}/_events/guestbook`);
    const html = await res.body.text();
    expect(res.statusCode).to.equal(200);
    expect(res.headers['content-type']).to.equal('text/html; charset=utf-8');
    expect(html).to.match(/^<!doctype html>/);
    expect(html).to.contain("const api = '/_events/api/entries';");
  });

  it('the page, in headless Chromium: signing shows the entry; an invalid one shows its problems', async () => {
    if (!existsSync('/usr/bin/chromium')) throw new Error('headless Chromium is needed at /usr/bin/chromium for this spec: install it with "apt-get install -y chromium"');
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'] });
    try {
      const page = await browser.newPage();
      await page.goto(`${rt.url}/_events/guestbook`);
      await page.waitForSelector('#entries li');
      await page.fill('input[name=name]', 'Linus');
      await page.fill('textarea[name=message]', 'Signed from the page');
      await page.click('button');
      await page.waitForFunction(() => document.querySelector('#entries li')?.textContent?.includes('Signed from the page'));
      expect(await page.textContent('#entries li strong')).to.equal('Linus');
      await page.click('button');
      await page.waitForFunction(() => document.getElementById('problems')!.textContent !== '');
      expect(await page.textContent('#problems')).to.equal('name: is required (text); message: is required (text)');
    } finally {
      await browser.close();
    }
  });
});
