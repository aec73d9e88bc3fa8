/**
 * `npm run docs:screenshots`: the console's pages in light and dark, as PNGs in docs/console/.
 * Starts a runtime on an in-memory embedded store with a few example events (one fails and is
 * retried until it is dead), fires them for a while so the charts have something to show,
 * signs in as the store's admin in headless Chromium and photographs each page.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { request } from 'undici';
import { makeConfig } from '../src/config/index.ts';
import { Runtime } from '../src/runtime.ts';
import { kPackageRoot } from '../src/server/console-build.ts';

const kOut = path.join(kPackageRoot, 'docs', 'console');
const kSeconds = Number(process.env.SCREENSHOT_SECONDS ?? 40);
const att = (code: string) => ({ content_type: 'application/javascript', data: Buffer.from(code).toString('base64') });

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lively-shots-'));
const rt = await new Runtime({ config: makeConfig({ port: 0, dataDir, embeddedMemory: true, sample: false, logLevel: 'silent', workerUser: '', threads: 2 }) }).start();
try {
  await rt.db.workers.bulk({ docs: [
    { _id: 'greet', type: 'node', delegate: 'index.js', _attachments: { 'index.js': att(`// Answers a greeting and logs who asked.
module.exports = async (msg, ctx) => {
  const name = msg.parameters.name ?? 'world';
  ctx.log(\`greeting \${name}\`);
  return { hello: name, at: new Date().toISOString() };
};
`) } },
    { _id: 'flaky', type: 'node', delegate: 'index.js', _attachments: { 'index.js': att(`// Fails one time in five, as a remote API might.
module.exports = (msg) => {
  if (Math.random() < 0.2) throw new Error('upstream answered 503');
  return { ok: true };
};
`) } },
  ] } as never);
  await rt.db.events.bulk({ docs: [
    { _id: 'greet', trigger: { '/greet': { method: ['GET', 'POST'] } }, workers: { greet: {} } },
    { _id: 'sync', trigger: { '/sync': { method: 'POST' } }, workers: [{ name: 'flaky', retry: { attempts: 2, backoff: '10ms' } }] },
    { _id: 'nightly', trigger: [{ schedule: { cron: '0 3 * * *' } }], workers: { greet: {} } },
    { _id: 'orders', trigger: [{ changes: { db: 'orders' } }], workers: { greet: {} } },
  ] } as never);
  await rt.nano.db.create('orders').catch(() => undefined);
  while (rt.catalog.matcher.size < 4) await new Promise((r) => setTimeout(r, 50));

  // a steady trickle with bursts, so the charts have shape
  let firing = true;
  const fire = (async () => {
    let i = 0;
    while (firing) {
      const burst = 5 + Math.round(15 * Math.abs(Math.sin(i++ / 8)));
      await Promise.all(Array.from({ length: burst }, (_, k) => request(`${rt.url}/_events/${k % 4 === 0 ? 'sync' : 'greet'}?name=Ada`, { method: 'POST' }).then((r) => r.body.dump())));
      if (i % 10 === 0) await rt.nano.use<Record<string, unknown>>('orders').insert({ total: i } as never);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();

  const admin = new URL(rt.couchUrl);
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  try {
    mkdirSync(kOut, { recursive: true });
    for (const theme of ['light', 'dark'] as const) {
      const context = await browser.newContext({ viewport: { width: 1200, height: 760 }, colorScheme: theme });
      const page = await context.newPage();
      await page.goto(`${rt.url}/_lively/ui/signin`);
      await page.screenshot({ path: path.join(kOut, `signin-${theme}.png`) });
      await page.getByLabel('Name').fill(decodeURIComponent(admin.username));
      await page.getByLabel('Password').fill(decodeURIComponent(admin.password));
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForURL(`${rt.url}/_lively/ui/`);
      if (theme === 'light') await new Promise((r) => setTimeout(r, kSeconds * 1000));
      await page.goto(`${rt.url}/_lively/ui/#/overview`);
      await page.waitForTimeout(2_500);
      await page.screenshot({ path: path.join(kOut, `overview-${theme}.png`) });
      await page.goto(`${rt.url}/_lively/ui/#/events`);
      await page.locator('tr[data-event="greet"]').waitFor();
      await page.getByRole('button', { name: 'Fire and wait' }).click();
      await page.locator('#fire-result[data-status]').waitFor();
      await page.screenshot({ path: path.join(kOut, `events-${theme}.png`) });
      await page.goto(`${rt.url}/_lively/ui/#/workers`);
      await page.getByRole('button', { name: 'Show worker greet' }).click();
      await page.locator('#worker-detail pre').waitFor();
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: path.join(kOut, `workers-${theme}.png`) });
      await page.goto(`${rt.url}/_lively/ui/#/activations`);
      await page.locator('#activation-rows tr[data-activation]').first().waitFor();
      await page.waitForTimeout(1_500);
      await rt.activationLog.flush();
      // a failed activation: its record keeps input, error and logs, and it can be rerun
      await page.locator('#activation-rows tr[data-status="dead"] button').first().click();
      await page.locator('#activation-detail pre[data-worker]').first().waitFor();
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: path.join(kOut, `activations-${theme}.png`) });
      await page.goto(`${rt.url}/_lively/ui/#/dead`);
      await page.locator('#activation-rows tr').first().waitFor();
      await page.waitForTimeout(500);
      await page.screenshot({ path: path.join(kOut, `dead-${theme}.png`) });
      await page.goto(`${rt.url}/_lively/ui/#/store`);
      await page.locator('#store-feeds').waitFor();
      await page.screenshot({ path: path.join(kOut, `store-${theme}.png`) });
      await context.close();
    }
  } finally {
    firing = false;
    await fire.catch(() => undefined);
    await browser.close();
  }
} finally {
  await rt.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
console.log(`screenshots written to ${path.relative(process.cwd(), kOut)}/`);
