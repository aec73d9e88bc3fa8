/**
 * A page on another origin calls an endpoint event from headless Chromium, as a web app
 * would: the browser's preflight is answered by the runtime without firing anything, the
 * page reads the worker's JSON, and a page on an origin the event does not list cannot.
 *
 * Needs Debian's `chromium` at /usr/bin/chromium (driven by playwright-core); without it
 * this spec fails, saying so.
 */
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser } from 'playwright-core';
import type { Runtime } from '../../src/runtime.ts';
import { dropPrefix } from '../support/couch.ts';
import { eventually, startRuntime } from '../support/runtime.ts';

const kChromium = '/usr/bin/chromium';
const kArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
  '--no-first-run', '--disable-component-update', '--disable-sync'];
const att = (code: string) => ({ content_type: 'application/javascript', data: Buffer.from(code).toString('base64') });

/** The page: POSTs JSON with a custom header (so the browser must ask first) and shows what came back. */
function pageHtml(endpoint: string): string {
  return `<!doctype html><meta charset="utf-8"><title>caller</title><pre id="out">…</pre>
<script>
window.result = fetch(${JSON.stringify(endpoint)}, {
  method: 'POST',
  headers: { 'content-type': 'application/json', 'x-token': 't1' },
  body: JSON.stringify({ name: 'Ada' }),
}).then(async (r) => ({ ok: true, status: r.status, json: await r.json(), exposed: r.headers.get('x-served-by') }))
  .catch((e) => ({ ok: false, error: String(e) }))
  .then((res) => { document.getElementById('out').textContent = JSON.stringify(res); return res; });
</script>`;
}

describe('an endpoint called from a page on another origin (headless Chromium)', function () {
  this.timeout(60_000);
  let rt: Runtime;
  let pages: http.Server;
  let pagePort = 0;
  let browser: Browser | undefined;

  before(async () => {
    if (!existsSync(kChromium)) {
      throw new Error(`headless Chromium is needed at ${kChromium} for this spec: install it with "apt-get install -y chromium"`);
    }
    pages = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(pageHtml(`${rt.url}/_events/api/greet`));
    });
    await new Promise<void>((resolve) => pages.listen(0, '127.0.0.1', resolve));
    pagePort = (pages.address() as AddressInfo).port;
    rt = await startRuntime();
    await rt.db.workers.insert({ _id: 'greet', type: 'node', delegate: 'index.js', _attachments: { 'index.js': att(`module.exports = (msg, ctx) =>
  ctx.respond(201, { hello: msg.request.body.name, token: msg.request.headers['x-token'] }, { 'x-served-by': 'greet' });`) } });
    await rt.db.events.insert({
      _id: 'greet', trigger: { '/api/greet': { method: 'POST' } }, workers: { greet: {} }, response: 'greet',
      cors: { origins: [`http://127.0.0.1:${pagePort}`], headers: ['content-type', 'x-token'], expose: ['x-served-by'], maxAge: 60 },
    } as never);
    await eventually(() => rt.catalog.get('greet') !== undefined, 10_000, 'event loaded');
    browser = await chromium.launch({ executablePath: kChromium, args: kArgs });
  });

  after(async () => {
    await browser?.close();
    await new Promise((resolve) => (pages ? pages.close(resolve) : resolve(undefined)));
    await rt?.stop();
    if (rt) await dropPrefix(rt.config.dbPrefix);
  });

  async function visit(origin: string): Promise<{ result: any }> {
    const page = await browser!.newPage();
    try {
      await page.goto(`${origin}/`);
      const result = await page.evaluate(() => (window as unknown as { result: Promise<unknown> }).result);
      return { result };
    } finally {
      await page.close();
    }
  }

  it('the page reads the JSON; the preflight fired nothing, the POST fired the event once', async () => {
    const fired = rt.firing.fired;
    const preflights = await countOptions(rt);
    const { result } = await visit(`http://127.0.0.1:${pagePort}`);
    expect(result).to.deep.equal({ ok: true, status: 201, json: { hello: 'Ada', token: 't1' }, exposed: 'greet' });
    expect(rt.firing.fired - fired, 'only the POST fired a worker').to.equal(1);
    expect(await countOptions(rt) - preflights, 'the browser did send a preflight').to.equal(1);
  });

  it('a page on an origin the event does not list cannot read the answer, and nothing is fired', async () => {
    const fired = rt.firing.fired;
    // another origin: same port, another host name
    const { result } = await visit(`http://localhost:${pagePort}`);
    expect(result.ok).to.equal(false);
    expect(result.error).to.match(/TypeError/);
    expect(rt.firing.fired, 'the refused preflight stopped the POST').to.equal(fired);
  });
});

/** OPTIONS requests the runtime's server has answered so far (counted by a listener on it). */
const optionsSeen = new WeakMap<Runtime, { n: number }>();
async function countOptions(rt: Runtime): Promise<number> {
  let c = optionsSeen.get(rt);
  if (!c) {
    const counter = { n: 0 };
    c = counter;
    optionsSeen.set(rt, counter);
    const server = (rt as unknown as { server: { server: http.Server } }).server.server;
    server.on('request', (req: http.IncomingMessage) => { if (req.method === 'OPTIONS') counter.n++; });
  }
  return c.n;
}
