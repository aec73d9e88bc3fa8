/**
 * The web console in headless Chromium, as an admin uses it: signing in through CouchDB's
 * `_session`, watching an event fire live, opening its activation, rerunning it, disabling the
 * event and seeing its trigger refused; and as others meet it: a wrong password and a user who
 * is not an admin are refused, and nothing but the sign-in page is served to them. No secret
 * reaches any page.
 *
 * Needs Debian's `chromium` at /usr/bin/chromium (driven by playwright-core); without it this
 * spec fails, saying so.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { request } from 'undici';
import type { Runtime } from '../../src/runtime.ts';
import { adminHeaders, couchUrl, dropPrefix, uniquePrefix } from '../support/couch.ts';
import { eventually, startRuntime } from '../support/runtime.ts';
import { dropUsers, makeUser, type User } from '../security/support.ts';

const kChromium = '/usr/bin/chromium';
const kArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
  '--no-first-run', '--disable-component-update', '--disable-sync'];
const att = (code: string) => ({ content_type: 'application/javascript', data: Buffer.from(code).toString('base64') });

describe('the web console (headless Chromium)', function () {
  this.timeout(90_000);
  const prefix = uniquePrefix();
  const secretValue = `s3cret-${randomBytes(8).toString('hex')}`;
  let rt: Runtime;
  let browser: Browser | undefined;
  let plain: User;
  const admin = { name: decodeURIComponent(new URL(couchUrl()).username), password: decodeURIComponent(new URL(couchUrl()).password) };
  const contexts: BrowserContext[] = [];

  before(async () => {
    if (!existsSync(kChromium)) {
      throw new Error(`headless Chromium is needed at ${kChromium} for this spec: install it with "apt-get install -y chromium"`);
    }
    plain = await makeUser(prefix, 'viewer');
    rt = await startRuntime({ config: { dbPrefix: prefix } });
    const put = await request(`${rt.url}/_lively/secrets/GREETING_KEY`, { method: 'PUT', headers: { ...adminHeaders(), 'content-type': 'application/json' }, body: JSON.stringify({ value: secretValue }) });
    expect(put.statusCode).to.equal(201);
    await put.body.dump();
    await rt.db.workers.insert({ _id: 'hello', type: 'node', delegate: 'index.js', secrets: ['GREETING_KEY'], _attachments: { 'index.js': att(`// says hello
module.exports = (msg, ctx) => ({ hello: msg.parameters.name, keyLength: ctx.secrets.GREETING_KEY.length });`) } } as never);
    await rt.db.events.insert({ _id: 'hello', trigger: { '/hello': { method: 'POST' } }, workers: { hello: {} } } as never);
    await eventually(() => rt.catalog.get('hello') !== undefined, 10_000, 'event loaded');
    browser = await chromium.launch({ executablePath: kChromium, args: kArgs });
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    await rt?.stop();
    await dropPrefix(prefix);
    if (plain) await dropUsers([plain]);
  });

  /** A fresh browser profile (no cookies) with every same-origin response body kept. */
  async function open(): Promise<{ page: Page; seen: string[] }> {
    const context = await browser!.newContext();
    contexts.push(context);
    const page = await context.newPage();
    const seen: string[] = [];
    page.on('response', (res) => {
      if (!res.url().startsWith(rt.url) || (res.headers()['content-type'] ?? '').startsWith('text/event-stream')) return;
      res.text().then((t) => seen.push(t), () => undefined);
    });
    return { page, seen };
  }

  async function signIn(page: Page, name: string, password: string): Promise<void> {
    await page.goto(`${rt.url}/_lively/ui/`);
    expect(new URL(page.url()).pathname, 'sent to the sign-in page').to.equal('/_lively/ui/signin');
    await page.getByLabel('Name').fill(name);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  it('a wrong password is refused, and the console stays closed', async () => {
    const { page } = await open();
    // a made-up name: a real user would be locked out after failed logins on CouchDB 3
    await signIn(page, `nobody_${randomBytes(4).toString('hex')}`, 'wrong');
    await page.getByRole('alert').filter({ hasText: 'Wrong name or password.' }).waitFor();
    // CouchDB answers a refused login with an empty AuthSession cookie; no session either way
    expect((await page.context().cookies()).filter((c) => c.value !== '')).to.deep.equal([]);
    await page.goto(`${rt.url}/_lively/ui/`);
    expect(new URL(page.url()).pathname).to.equal('/_lively/ui/signin');
    const script = await page.request.get(`${rt.url}/_lively/ui/assets/app.js`);
    expect(script.status(), 'the console itself is not served').to.equal(401);
  });

  it('a user who is not an admin is refused, and signed out again', async () => {
    const { page } = await open();
    await signIn(page, plain.name, plain.password);
    await page.getByRole('alert').filter({ hasText: 'not a CouchDB admin' }).waitFor();
    await eventually(async () => !(await page.context().cookies()).some((c) => c.name === 'AuthSession' && c.value !== ''), 5_000, 'session ended');
    await page.goto(`${rt.url}/_lively/ui/`);
    expect(new URL(page.url()).pathname).to.equal('/_lively/ui/signin');
  });

  it('an admin signs in, sees an event fire live, opens its activation and reruns it', async () => {
    const { page, seen } = await open();
    await signIn(page, admin.name, admin.password);
    await page.waitForURL(`${rt.url}/_lively/ui/`);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await page.getByRole('link', { name: 'Activations' }).click();
    await page.getByRole('heading', { name: 'Activations', level: 1 }).waitFor();
    await page.locator('.live[data-up="true"]').waitFor();

    const fired = await request(`${rt.url}/_events/hello`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Ada' }) });
    const { activation } = await fired.body.json() as { activation: string };
    expect(fired.statusCode).to.equal(202);
    // the row arrives through the stream, without a reload
    const row = page.locator(`tr[data-activation="${activation}"]`);
    await row.waitFor({ timeout: 10_000 });
    expect(await row.getAttribute('data-status')).to.equal('ok');

    await rt.activationLog.flush();
    await row.getByRole('button').click();
    const result = page.locator('#activation-detail pre[data-worker="hello"]');
    await result.waitFor();
    expect(JSON.parse(await result.textContent() ?? '')).to.deep.equal({ hello: 'Ada', keyLength: secretValue.length });

    await page.getByRole('button', { name: 'Rerun' }).click();
    const again = page.locator('#rerun-result');
    await again.waitFor();
    const rerunId = await again.getAttribute('data-activation');
    expect(rerunId).to.be.a('string').and.not.equal(activation);
    await page.locator(`tr[data-activation="${rerunId}"]`).waitFor({ timeout: 10_000 });
    await rt.activationLog.flush();
    const rec = await rt.firer.activation(rerunId!);
    expect(rec.rerunOf).to.equal(activation);
    expect(rec.workers[0]!.result).to.deep.equal({ hello: 'Ada', keyLength: secretValue.length });

    // the other pages render for an admin
    for (const [link, heading] of [['Overview', 'Overview'], ['Workers', 'Workers'], ['Store', 'Store'], ['Events', 'Events']]) {
      await page.getByRole('link', { name: link, exact: true }).click();
      await page.getByRole('heading', { name: heading, level: 1 }).waitFor();
    }
    await page.getByRole('link', { name: 'Workers', exact: true }).click();
    await page.getByRole('button', { name: 'Show worker hello' }).click();
    await page.locator('#worker-detail .tok-comment').filter({ hasText: '// says hello' }).waitFor();

    const text = seen.join('\n') + await page.content();
    expect(text, 'no secret value reached the page').not.to.contain(secretValue);
    expect(text, 'no admin password reached the page').not.to.contain(admin.password);
  });

  it('under a burst of activations the live table keeps at most 200 rows and says how many it left out', async () => {
    const { page } = await open();
    await signIn(page, admin.name, admin.password);
    await page.waitForURL(`${rt.url}/_lively/ui/`);
    await page.goto(`${rt.url}/_lively/ui/#/activations`);
    await page.locator('.live[data-up="true"]').waitFor();
    // 3 × 1,000 records within three flush periods, as 12,000 triggers a second would bring,
    // straight into the runtime's feed so that the rate does not depend on this machine
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 1000; i++) {
        rt.console.feed.record({ activation: `burst-${round}-${i}`, events: ['hello'], trigger: 'http', path: '/hello', method: 'POST', started: Date.now(), durationMs: 0.2, workers: [{ worker: 'hello', status: 'ok', durationMs: 0.2, logs: [] }] });
      }
      await new Promise((r) => setTimeout(r, 300));
    }
    await page.locator('tr[data-activation="burst-2-99"]').waitFor({ timeout: 10_000 });
    expect(await page.locator('#live-count').textContent()).to.equal('2,700 more not shown (too many to list live)');
    expect(await page.locator('#activation-rows tr').count()).to.equal(200);
    // newest first: the last batch's rows lead
    expect(await page.locator('#activation-rows tr').first().getAttribute('data-activation')).to.equal('burst-2-99');
    // the page still answers: a filter applied now is applied
    await page.locator('#filter-status').selectOption('error');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.locator('#activation-rows tr.empty').waitFor();
  });

  it('an admin disables an event, sees its trigger refused, and enables it again', async () => {
    const { page } = await open();
    await signIn(page, admin.name, admin.password);
    await page.waitForURL(`${rt.url}/_lively/ui/`);
    await page.goto(`${rt.url}/_lively/ui/#/events`);
    const row = page.locator('tr[data-event="hello"]');
    await row.waitFor();
    await row.getByRole('button', { name: 'Disable event hello' }).click();
    await row.locator('.badge-disabled').waitFor({ timeout: 10_000 });
    expect(rt.catalog.get('hello')?.disabled).to.equal(true);

    await page.locator('#fire-event').selectOption('hello');
    await page.getByLabel('Body (JSON, or text)').fill('{"name": "Grace"}');
    await page.getByRole('button', { name: 'Fire and wait' }).click();
    await page.locator('#fire-result[data-status]').waitFor();
    expect(await page.locator('#fire-result').getAttribute('data-status')).to.equal('404');
    expect(await page.locator('#fire-result').textContent()).to.contain('LC_NO_EVENT');

    await page.locator('tr[data-event="hello"]').getByRole('button', { name: 'Enable event hello' }).click();
    await page.locator('tr[data-event="hello"] .badge-enabled').waitFor({ timeout: 10_000 });
    await page.getByRole('button', { name: 'Fire and wait' }).click();
    await eventually(async () => (await page.locator('#fire-result').getAttribute('data-status')) === '200', 10_000, 'fired again');
    expect(await page.locator('#fire-result').textContent()).to.contain('"hello": "Grace"');
  });
});
