/**
 * Events with `"response"`: the worker's result is the HTTP response, for thread, isolate and
 * process workers alike; its failures are 500/504/503 with the activation id only; HEAD is GET
 * without a body; events without `response` answer as before.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import type { Runtime } from '../../src/runtime.ts';
import { dropPrefix } from '../support/couch.ts';
import { eventually, startRuntime } from '../support/runtime.ts';

const att = (code: string, type = 'application/javascript') => ({ content_type: type, data: Buffer.from(code).toString('base64') });
const kLimit = 2 * 1024 * 1024;

/** The same answers, written for a handler (thread and isolate workers). */
const handlerSource = (sleep: string) => `module.exports = async (msg, ctx) => {
  const p = msg.parameters;
  switch (p.kind) {
    case 'json': return { status: 201, headers: { 'X-A': '1', 'set-cookie': ['a=1; Path=/', 'b=2; Path=/'] }, body: { ok: true, method: msg.method } };
    case 'text': return { body: 'héllo' };
    case 'html': return { headers: { 'content-type': 'text/html; charset=utf-8' }, body: '<h1>hi</h1>' };
    case 'bin': return ctx.respond(200, new Uint8Array([0, 1, 2, 255]), { 'content-type': 'image/png' });
    case 'redirect': return { status: 302, headers: { location: '/elsewhere' } };
    case 'plain': return { hello: 'world' };
    case 'throw': throw new Error('secret internals');
    case 'hop': return { headers: { connection: 'close' }, body: 'x' };
    case 'badstatus': return { status: 99, body: 'x' };
    case 'big': return { body: 'x'.repeat(Number(p.n)) };
    case 'echo': return { headers: { 'content-type': 'application/octet-stream' }, body: msg.request.body };
    case 'later': ctx.respond(202, 'accepted'); return;
    case 'sleep': ${sleep}; return { body: 'late' };
  }
  return { status: 404, body: 'no such kind' };
};`;

const pythonSource = `import base64, json, sys, time
for line in sys.stdin:
    msg = json.loads(line)
    p = msg["parameters"]
    k = p.get("kind")
    if k == "json": r = {"status": 201, "headers": {"X-A": "1", "set-cookie": ["a=1; Path=/", "b=2; Path=/"]}, "body": {"ok": True, "method": msg["method"]}}
    elif k == "text": r = {"body": "h\\u00e9llo"}
    elif k == "html": r = {"headers": {"content-type": "text/html; charset=utf-8"}, "body": "<h1>hi</h1>"}
    elif k == "bin": r = {"status": 200, "headers": {"content-type": "image/png"}, "bodyBase64": base64.b64encode(bytes([0, 1, 2, 255])).decode()}
    elif k == "redirect": r = {"status": 302, "headers": {"location": "/elsewhere"}}
    elif k == "plain": r = {"hello": "world"}
    elif k == "throw":
        print("secret internals", file=sys.stderr, flush=True)
        sys.exit(3)
    elif k == "hop": r = {"headers": {"connection": "close"}, "body": "x"}
    elif k == "badstatus": r = {"status": 99, "body": "x"}
    elif k == "big": r = {"body": "x" * int(p["n"])}
    elif k == "echo": r = {"headers": {"content-type": "application/octet-stream"}, "body": msg["request"]["body"]}
    elif k == "later": r = {"status": 202, "body": "accepted"}
    elif k == "sleep":
        time.sleep(int(p["ms"]) / 1000)
        r = {"body": "late"}
    else: r = {"status": 404, "body": "no such kind"}
    print(json.dumps({"result": r}), flush=True)
`;

async function call(rt: Runtime, p: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
  const res = await request(`${rt.url}/_events${p}`, { method: (init.method ?? 'GET') as 'GET', headers: init.headers, body: init.body });
  const bytes = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, bytes, text: bytes.toString('utf8') };
}

describe('events that answer like an endpoint ("response")', function () {
  this.timeout(60_000);
  let rt: Runtime;
  let holdDir: string;

  before(async () => {
    holdDir = mkdtempSync(path.join(os.tmpdir(), 'lively-endpoint-'));
    rt = await startRuntime({ config: { responseLimit: kLimit, maxWorkerQueue: 0 } });
    await rt.db.workers.bulk({ docs: [
      ...[false, true].flatMap((slow) => {
        // The slow ones give up after a second, for the timeout specs.
        const limits = slow ? { timeout: 1 } : {};
        const suffix = slow ? '_slow' : '';
        return [
          { _id: `r_thread${suffix}`, type: 'node', delegate: 'index.js', ...limits, _attachments: { 'index.js': att(handlerSource('await new Promise((r) => setTimeout(r, Number(p.ms)))')) } },
          { _id: `r_isolate${suffix}`, type: 'isolate', delegate: 'index.js', ...limits, _attachments: { 'index.js': att(handlerSource('const end = Date.now() + Number(p.ms); while (Date.now() < end) {}')) } },
          { _id: `r_process${suffix}`, type: 'python', delegate: 'main.py', ...limits, _attachments: { 'main.py': att(pythonSource, 'text/x-python') } },
        ];
      }),
      // A stdin worker run as a process, answering through the helper module.
      { _id: 'r_nodeproc', type: 'node', isolation: 'process', delegate: 'main.js', _attachments: { 'main.js': att(`const { respond } = require('livelycouch/worker');
require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {
  const p = JSON.parse(line).parameters;
  if (p.kind === 'bin') respond(200, Buffer.from([0, 1, 2, 255]), { 'content-type': 'image/png' });
  else if (p.kind === 'big') respond(200, 'x'.repeat(Number(p.n)));
  else respond(201, { ok: true }, { 'x-a': '1' });
});`) } },
      { _id: 'held', type: 'node', delegate: 'index.js', concurrency: 1, queue: 0, _attachments: { 'index.js': att(`const fs = require('node:fs');
module.exports = async (msg) => {
  while (!fs.existsSync(msg.parameters.hold)) await new Promise((r) => setTimeout(r, 10));
  return { body: 'released' };
};`) } },
      { _id: 'quiet', type: 'node', delegate: 'index.js', _attachments: { 'index.js': att('module.exports = () => ({ done: true });') } },
    ] });
    await rt.db.events.bulk({ docs: [
      { _id: 'ep_thread', trigger: { '/t/:kind': {} }, workers: { r_thread: {} }, response: 'r_thread' },
      { _id: 'ep_isolate', trigger: [{ path: '/i/:kind' }], workers: [{ name: 'r_isolate' }], response: 'r_isolate' },
      { _id: 'ep_process', trigger: { '/p/:kind': {} }, workers: { r_process: {} }, response: 'r_process' },
      { _id: 'ep_thread_slow', trigger: { '/ts/:kind': {} }, workers: { r_thread_slow: {} }, response: 'r_thread_slow' },
      { _id: 'ep_isolate_slow', trigger: { '/is/:kind': {} }, workers: { r_isolate_slow: {} }, response: 'r_isolate_slow' },
      { _id: 'ep_process_slow', trigger: { '/ps/:kind': {} }, workers: { r_process_slow: {} }, response: 'r_process_slow' },
      { _id: 'ep_nodeproc', trigger: { '/np/:kind': {} }, workers: { r_nodeproc: {} }, response: 'r_nodeproc' },
      { _id: 'ep_held', trigger: { '/held': {} }, workers: { held: {} }, response: 'held' },
      // Two workers, the second answers: the first's outcome does not matter to the response.
      { _id: 'ep_two', trigger: { '/two': { method: 'POST' } }, workers: [{ name: 'quiet' }, { name: 'r_thread', parameters: { kind: 'text' } }], response: 'r_thread' },
      { _id: 'plain', trigger: { '/plain': { method: 'GET' } }, workers: { quiet: {} } },
    ] });
    await eventually(() => rt.catalog.matcher.size >= 10, 10_000, 'events loaded');
  });

  after(async () => {
    await rt?.stop();
    if (rt) await dropPrefix(rt.config.dbPrefix);
    rmSync(holdDir, { recursive: true, force: true });
  });

  for (const [kind, prefix] of [['thread', '/t'], ['isolate', '/i'], ['process', '/p']] as const) {
    describe(`${kind} workers`, () => {
      it('status, headers (several set-cookie) and a JSON body', async () => {
        const r = await call(rt, `${prefix}/json`);
        expect(r.status).to.equal(201);
        expect(r.headers['content-type']).to.equal('application/json');
        expect(r.headers['x-a']).to.equal('1');
        expect(r.headers['set-cookie']).to.deep.equal(['a=1; Path=/', 'b=2; Path=/']);
        expect(JSON.parse(r.text)).to.deep.equal({ ok: true, method: 'GET' });
        expect(Number(r.headers['content-length'])).to.equal(r.bytes.length);
      });

      it('a string body is sent as it is, as UTF-8 text unless a content-type is given', async () => {
        const text = await call(rt, `${prefix}/text`);
        expect(text.status).to.equal(200);
        expect(text.headers['content-type']).to.equal('text/plain; charset=utf-8');
        expect(text.text).to.equal('héllo');
        expect(text.headers['content-length']).to.equal('6');
        const html = await call(rt, `${prefix}/html`);
        expect(html.headers['content-type']).to.equal('text/html; charset=utf-8');
        expect(html.text).to.equal('<h1>hi</h1>');
      });

      it('bytes (bodyBase64, or bytes given to ctx.respond) arrive as those bytes', async () => {
        const r = await call(rt, `${prefix}/bin`);
        expect(r.status).to.equal(200);
        expect(r.headers['content-type']).to.equal('image/png');
        expect([...r.bytes]).to.deep.equal([0, 1, 2, 255]);
      });

      it('a redirect is sent with its location; a result of another shape is a JSON 200', async () => {
        const r = await call(rt, `${prefix}/redirect`);
        expect(r.status).to.equal(302);
        expect(r.headers.location).to.equal('/elsewhere');
        expect(r.bytes.length).to.equal(0);
        const plain = await call(rt, `${prefix}/plain`);
        expect(plain.status).to.equal(200);
        expect(plain.headers['content-type']).to.equal('application/json');
        expect(JSON.parse(plain.text)).to.deep.equal({ hello: 'world' });
      });

      it('a response given before the handler ends (or as the result line) is the response', async () => {
        const r = await call(rt, `${prefix}/later`);
        expect(r.status).to.equal(202);
        expect(r.text).to.equal('accepted');
      });

      it('HEAD is answered as GET without a body', async () => {
        const r = await call(rt, `${prefix}/json`, { method: 'HEAD' });
        expect(r.status).to.equal(201);
        expect(r.headers['x-a']).to.equal('1');
        expect(r.headers['content-length']).to.equal(String(Buffer.byteLength(JSON.stringify({ ok: true, method: 'HEAD' }))));
        expect(r.bytes.length).to.equal(0);
      });

      it('a failing worker is a 500 with the activation id and nothing of the worker; its record keeps the details', async () => {
        const r = await call(rt, `${prefix}/throw`);
        expect(r.status).to.equal(500);
        const body = JSON.parse(r.text);
        expect(body).to.have.keys('error', 'reason', 'activation');
        expect(body.error).to.equal('LC_WORKER_ERROR');
        expect(r.text).to.not.contain('secret internals');
        expect(r.text).to.not.match(/\bat\s|\.js:\d|main\.py|exit/);
        const rec = await rt.firer.activation(body.activation);
        expect(rec.workers[0]!.status).to.equal('error');
        expect(JSON.stringify(rec.workers[0])).to.contain('secret internals');
      });

      it('a hop-by-hop header or a bad status is a 500 LC_BAD_RESPONSE, the activation saying which', async () => {
        const hop = await call(rt, `${prefix}/hop`);
        expect(hop.status).to.equal(500);
        const body = JSON.parse(hop.text);
        expect(body.error).to.equal('LC_BAD_RESPONSE');
        const rec = await rt.firer.activation(body.activation);
        expect(rec.workers[0]!.error!.code).to.equal('LC_BAD_RESPONSE');
        expect(rec.workers[0]!.error!.message).to.contain('"connection" is a hop-by-hop header');
        const bad = await call(rt, `${prefix}/badstatus`);
        expect(bad.status).to.equal(500);
        const rec2 = await rt.firer.activation(JSON.parse(bad.text).activation);
        expect(rec2.workers[0]!.error!.message).to.contain('status: must be a whole number from 200 to 599');
      });

      it('a worker that does not answer in time is a 504 with the activation id', async () => {
        const r = await call(rt, `${prefix}s/sleep?ms=5000`);
        expect(r.status).to.equal(504);
        const body = JSON.parse(r.text);
        expect(body).to.include({ error: 'LC_WORKER_TIMEOUT' });
        expect(body.activation).to.be.a('string');
      });

      it(`a body of LIVELY_RESPONSE_LIMIT bytes is sent whole; one byte more is a 500 naming the limit`, async () => {
        const ok = await call(rt, `${prefix}/big?n=${kLimit}`);
        expect(ok.status).to.equal(200);
        expect(ok.bytes.length).to.equal(kLimit);
        expect(ok.bytes.every((b) => b === 0x78)).to.equal(true);
        const over = await call(rt, `${prefix}/big?n=${kLimit + 1}`);
        expect(over.status).to.equal(500);
        const body = JSON.parse(over.text);
        expect(body).to.include({ error: 'LC_RESPONSE_TOO_LARGE', reason: `the response body is over LIVELY_RESPONSE_LIMIT (${kLimit} bytes)` });
        expect(body.activation).to.be.a('string');
      });

      it('a request body near LIVELY_BODY_LIMIT reaches the worker and comes back whole', async () => {
        const sent = 'y'.repeat(1024 * 1024 - 16);
        const r = await call(rt, `${prefix}/echo`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: sent });
        expect(r.status).to.equal(200);
        expect(r.text.length).to.equal(sent.length);
        expect(r.text === sent).to.equal(true);
      });
    });
  }

  it('a node process worker answers through the helper module: JSON, bytes, and a body at the limit', async () => {
    const json = await call(rt, '/np/json');
    expect(json.status).to.equal(201);
    expect(json.headers['x-a']).to.equal('1');
    expect(JSON.parse(json.text)).to.deep.equal({ ok: true });
    const bin = await call(rt, '/np/bin');
    expect([...bin.bytes]).to.deep.equal([0, 1, 2, 255]);
    const big = await call(rt, `/np/big?n=${kLimit}`);
    expect(big.status).to.equal(200);
    expect(big.bytes.length).to.equal(kLimit);
  });

  it('a process result line far over the limit fails its message at once, and the process serves the next', async () => {
    const over = await call(rt, `/p/big?n=${3 * kLimit}`);
    expect(over.status, 'not a 504: not held until the timeout').to.equal(500);
    expect(JSON.parse(over.text).error).to.equal('LC_RESPONSE_TOO_LARGE');
    const next = await call(rt, '/p/text');
    expect(next.text).to.equal('héllo');
  });

  it('a full queue is a 503 with Retry-After; the held request is answered once released', async () => {
    const hold = path.join(holdDir, 'go');
    const first = call(rt, `/held?hold=${encodeURIComponent(hold)}`);
    await eventually(() => rt.firing.inFlight > 0, 5_000, 'the first request running');
    const second = await call(rt, `/held?hold=${encodeURIComponent(hold)}`);
    expect(second.status).to.equal(503);
    expect(second.headers['retry-after']).to.equal('1');
    expect(JSON.parse(second.text).error).to.equal('LC_QUEUE_FULL');
    writeFileSync(hold, '');
    const r = await first;
    expect(r.status).to.equal(200);
    expect(r.text).to.equal('released');
    expect(existsSync(hold)).to.equal(true);
  });

  it('with several workers, the one named by "response" answers', async () => {
    const r = await call(rt, '/two', { method: 'POST' });
    expect(r.status).to.equal(200);
    expect(r.text).to.equal('héllo');
  });

  it('an event without "response" answers as before: 202 at once, 200 with outcomes when waiting, 405 for another method', async () => {
    const r = await call(rt, '/plain');
    expect(r.status).to.equal(202);
    expect(JSON.parse(r.text)).to.include({ ok: true }).and.to.have.keys('ok', 'activation', 'events', 'workers');
    const waited = await call(rt, '/plain?wait=true');
    expect(waited.status).to.equal(200);
    expect(JSON.parse(waited.text).outcomes[0]).to.include({ status: 'ok' });
    const head = await call(rt, '/plain', { method: 'HEAD' });
    expect(head.status).to.equal(202);
    expect(head.bytes.length).to.equal(0);
    expect((await call(rt, '/plain', { method: 'DELETE' })).status).to.equal(405);
  });
});
