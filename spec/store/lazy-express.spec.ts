/**
 * The embedded store starts without side-channel's dependency tree and without multiparty
 * (src/store/embedded/lazy-express.ts). Shown three ways: in a node process of its own, as the
 * store child loads express (the require cache is the process's), qs parses and stringifies as it
 * does with the real package; `sideChannel` answers as the package does, call for call; and a
 * form upload of an attachment, the one route that uses multiparty, works through the suite's
 * store (the embedded store, or CouchDB with COUCHDB_URL).
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { sideChannel } from '../../src/store/embedded/lazy-express.ts';
import { adminHeaders, couchUrl, uniquePrefix } from '../support/couch.ts';

const kLazy = fileURLToPath(new URL('../../src/store/embedded/lazy-express.ts', import.meta.url));
const require = createRequire(import.meta.url);

/** What express's qs makes of a few queries, and what was loaded; with the stand-ins when `deferred`. */
function inChild(deferred: boolean): Record<string, unknown> {
  const script = `
import { createRequire } from 'node:module';
import { deferExpressExtras } from ${JSON.stringify(kLazy)};
const require = createRequire(${JSON.stringify(import.meta.url)});
const fromEp = createRequire(require.resolve('express-pouchdb/package.json'));
if (${deferred}) deferExpressExtras(require);
const express = fromEp('express');
fromEp('./lib/routes/documents.js'); // requires multiparty as the store loads it
const qs = createRequire(fromEp.resolve('express/package.json'))('qs');
const loaded = (name) => Object.keys(require.cache).some((k) => k.includes('/node_modules/' + name + '/'));
// multiparty's own module is in the cache from the start, as the stand-in; uid-safe comes with the real one
const atStart = { getIntrinsic: loaded('get-intrinsic'), multiparty: loaded('uid-safe') };
const cyclic = { a: 1 }; cyclic.self = cyclic;
let cycle; try { qs.stringify(cyclic); cycle = 'accepted'; } catch (e) { cycle = e.constructor.name + ': ' + e.message; }
const multiparty = fromEp('multiparty');
const form = new multiparty.Form();
process.stdout.write(JSON.stringify({
  atStart,
  parsed: [
    qs.parse('since=0&limit=5&include_docs=true'),
    qs.parse('a[b]=1&a[c][d]=2&x=1&x=2&arr[1]=b&arr[0]=a'),
    qs.parse('keys=%5B%22a%22%2C%22b%22%5D&e=&%5Bweird=1'),
    qs.parse(Array.from({ length: 30 }, (_, i) => 'l[' + i + ']=' + i).join('&')),
  ],
  stringified: [qs.stringify({ a: { b: [1, 2], c: 'x y' }, d: null }), qs.stringify({ k: [{ x: 1 }, { y: 2 }] })],
  cycle,
  formIsReal: typeof form.parse === 'function' && form instanceof require(fromEp.resolve('multiparty')).Form,
  multipartyAfter: loaded('uid-safe'),
  appIsFunction: typeof express() === 'function',
}));
`;
  return JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' })) as Record<string, unknown>;
}

describe('embedded store: qs\'s side-channel and multiparty, loaded only when used', function () {
  this.timeout(30_000);

  it('express starts without get-intrinsic or multiparty; qs parses and stringifies exactly as with the real side-channel; multiparty loads at first use', () => {
    const withStandIns = inChild(true);
    const asBefore = inChild(false);
    expect(asBefore.atStart, 'the layout this spec expects').to.deep.equal({ getIntrinsic: true, multiparty: true });
    expect(withStandIns.atStart).to.deep.equal({ getIntrinsic: false, multiparty: false });
    expect(withStandIns.parsed).to.deep.equal(asBefore.parsed);
    expect(withStandIns.stringified).to.deep.equal(asBefore.stringified);
    expect(withStandIns.cycle).to.equal(asBefore.cycle).and.to.match(/^RangeError: Cyclic object value/);
    expect(withStandIns.formIsReal).to.equal(true);
    expect(withStandIns.multipartyAfter).to.equal(true);
    expect(withStandIns.appIsFunction).to.equal(true);
  });

  it('sideChannel answers as side-channel does, for objects, functions and primitives', () => {
    const real = require(createRequire(require.resolve('qs')).resolve('side-channel')) as () => ReturnType<typeof sideChannel>;
    const o = {};
    const f = () => undefined;
    const keys: unknown[] = [o, f, 'k', 1, NaN, null, undefined, true, Symbol.for('s'), 0n];
    const run = (make: () => ReturnType<typeof sideChannel>) => {
      const c = make();
      const out: unknown[] = [];
      for (const k of keys) out.push(['before', c.has(k), c.get(k), c.delete(k)]);
      keys.forEach((k, i) => c.set(k, i));
      for (const k of keys) out.push(['set', c.has(k), c.get(k)]);
      c.set(o, 'again');
      out.push(['overwritten', c.get(o)]);
      for (const k of keys.slice(0, 5)) out.push(['deleted', c.delete(k), c.has(k), c.delete(k)]);
      for (const k of [o, 'k', 1]) { try { c.assert(k); out.push(['assert', 'ok']); } catch (e) { out.push(['assert', (e as Error).constructor.name, (e as Error).message]); } }
      c.set('k', 1);
      try { c.assert('k'); out.push(['assert', 'ok']); } catch (e) { out.push(['assert', (e as Error).message]); }
      return out;
    };
    expect(run(sideChannel)).to.deep.equal(run(real));
  });

  it('POST /db/doc multipart/form-data - a form upload of an attachment (multiparty\'s route) is stored and reads back, and leaves no file in the temp folder', async () => {
    const before = new Set(readdirSync(os.tmpdir()));
    const db = `${uniquePrefix()}form`;
    const base = new URL(couchUrl());
    const origin = `${base.origin}`;
    const headers = adminHeaders();
    expect((await request(`${origin}/${db}`, { method: 'PUT', headers })).statusCode).to.equal(201);
    try {
      const created = await request(`${origin}/${db}/doc`, { method: 'PUT', headers: { ...headers, 'content-type': 'application/json' }, body: '{"kind":"form"}' });
      const { rev } = await created.body.json() as { rev: string };
      const boundary = 'lively-form-boundary';
      const body = [
        `--${boundary}`, 'Content-Disposition: form-data; name="_rev"', '', rev,
        `--${boundary}`, 'Content-Disposition: form-data; name="_attachments"; filename="note.txt"', 'Content-Type: text/plain', '', 'hello form',
        `--${boundary}--`, '',
      ].join('\r\n');
      const res = await request(`${origin}/${db}/doc`, { method: 'POST', headers: { ...headers, 'content-type': `multipart/form-data; boundary=${boundary}`, referer: origin }, body });
      const answer = await res.body.json() as { ok?: boolean; rev?: string };
      expect(res.statusCode, JSON.stringify(answer)).to.equal(201);
      expect(answer.ok).to.equal(true);
      expect(answer.rev).to.match(/^2-/);
      const att = await request(`${origin}/${db}/doc/note.txt`, { headers });
      expect(att.statusCode).to.equal(200);
      expect(await att.body.text()).to.equal('hello form');
      // the store's child shares this process's temp folder (TMPDIR); on CouchDB nothing is written here
      await new Promise((r) => setTimeout(r, 100));
      expect(readdirSync(os.tmpdir()).filter((f) => !before.has(f) && f.endsWith('.txt'))).to.deep.equal([]);
    } finally {
      await request(`${origin}/${db}`, { method: 'DELETE', headers }).then((r) => r.body.dump());
    }
  });
});
