/**
 * The whole path with real workers: HTTP → matcher → registry → gate → thread pool,
 * child processes and isolates, on the suite's store.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import type { Runtime } from '../../src/runtime.ts';
import { connect } from '../../src/store/couch.ts';
import { adminHeaders, couchUrl } from '../support/couch.ts';
import { eventually, startRuntime } from '../support/runtime.ts';

const att = (code: string, type = 'application/javascript') => ({ content_type: type, data: Buffer.from(code).toString('base64') });

async function call(rt: Runtime, path: string, method = 'GET') {
  const res = await request(rt.url + path, { method: method as 'GET', headers: path.startsWith('/_lively/') ? adminHeaders() : {} });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, any> };
}

describe('workers through the runtime', function () {
  this.timeout(30_000);
  let rt: Runtime;
  let records: string;

  before(async () => {
    rt = await startRuntime({ config: { maxWorkerQueue: 0, interpreters: { lua: ['lua-is-not-installed-here'] } } });
    records = `${rt.config.dbPrefix}records`;
    await connect(couchUrl()).db.create(records);
    await rt.db.workers.bulk({ docs: [
      { _id: 'send_email', arguments: {}, delegate: 'sendmail.js', type: 'node', _attachments: {
        'sendmail.js': att(`const other = require('./someOtherScript.js');
process.stdin.on('data', (d) => {
  const msg = JSON.parse(d.toString());
  console.log('recipient from stdin: ' + msg.arguments.recipient);
  console.log(JSON.stringify({ result: { to: msg.arguments.recipient, signature: other.sign(msg.arguments.recipient) } }));
});`),
        'someOtherScript.js': att(`exports.sign = (to) => 'signed for ' + to;`),
      } },
      { _id: 'py_sender', type: 'python', delegate: 'main.py', _attachments: { 'main.py': att(`import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    print(json.dumps({"emit": "sent", "parameters": {"to": msg["arguments"]["to"]}}), flush=True)
    print(json.dumps({"result": {"sent": True}}), flush=True)
`, 'text/x-python') } },
      { _id: 'recorder', type: 'node', delegate: 'index.js', couch: true, arguments: { db: records }, _attachments: { 'index.js': att(`const { couch } = require('livelycouch/worker');
module.exports = async (msg) => {
  await couch.use(msg.arguments.db).insert({ trigger: msg.trigger, path: msg.path, parameters: msg.parameters });
  return { recorded: true };
};`) } },
      { _id: 'failing', type: 'node', delegate: 'index.js', _attachments: { 'index.js': att(`module.exports = async () => { throw new Error('boom'); };`) } },
      { _id: 'slow', type: 'node', delegate: 'index.js', concurrency: 1, _attachments: { 'index.js': att(`module.exports = (msg) => new Promise((r) => setTimeout(() => r({ slept: true }), msg.parameters.ms ?? 0));`) } },
      // Holds its message until the file named by "hold" exists, so a spec decides when it ends.
      { _id: 'queued', type: 'node', delegate: 'index.js', concurrency: 1, queue: 2, _attachments: { 'index.js': att(`const fs = require('node:fs');
module.exports = async (msg) => {
  while (msg.parameters.hold && !fs.existsSync(msg.parameters.hold)) await new Promise((r) => setTimeout(r, 10));
  return { n: Number(msg.parameters.n) };
};`) } },
      { _id: 'versioned', type: 'node', delegate: 'index.js', _attachments: { 'index.js': att(`module.exports = () => ({ version: 1 });`) } },
      { _id: 'sh_echo', type: 'sh', delegate: 'main.sh', _attachments: { 'main.sh': att(`while IFS= read -r line; do
  to=$(printf '%s' "$line" | sed -n 's/.*"to":"\\([^"]*\\)".*/\\1/p')
  printf '{"result":{"to":"%s","pid":%s}}\\n' "$to" "$$"
done
`, 'text/x-sh') } },
      { _id: 'py_couch', type: 'python', couch: true, delegate: 'main.py', _attachments: { 'main.py': att(`import base64, json, os, sys, urllib.parse, urllib.request, urllib.error
url = urllib.parse.urlsplit(os.environ["COUCHDB_URL"])
auth = base64.b64encode(f"{urllib.parse.unquote(url.username)}:{urllib.parse.unquote(url.password)}".encode()).decode()
origin = f"{url.scheme}://{url.hostname}:{url.port}"
def get(path):
    req = urllib.request.Request(origin + path, headers={"Authorization": "Basic " + auth, "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, None
for line in sys.stdin:
    msg = json.loads(line)
    s, session = get("/_session")
    granted, _ = get("/" + msg["arguments"]["granted"] + "/doc")
    closed, _ = get("/" + msg["arguments"]["closed"] + "/doc")
    print(json.dumps({"result": {"user": session["userCtx"]["name"], "roles": session["userCtx"]["roles"], "granted": granted, "closed": closed, "admin_in_env": "lively:" in os.environ["COUCHDB_URL"]}}), flush=True)
`, 'text/x-python') } },
      { _id: 'sandboxed', type: 'isolate', delegate: 'index.js', _attachments: { 'index.js': att(`module.exports = (msg) => ({ doubled: msg.parameters.n * 2, hasProcess: typeof process !== 'undefined' });`) } },
    ] });
    await rt.db.events.bulk({ docs: [
      { _id: 'email_event', trigger: { '/send_email': { method: 'GET' } }, workers: { send_email: { recipient: 'support@yourcompany.com' } } },
      { _id: 'py_send', trigger: { '/py/send': {} }, workers: { py_sender: { to: 'ops@example.com' } } },
      { _id: 'on_sent', trigger: { '/py_sender/sent': {} }, workers: { recorder: {} } },
      { _id: 'fail', trigger: { '/fail': {} }, workers: { failing: {} } },
      { _id: 'on_error', trigger: { '/lively/worker_error/:worker': {} }, workers: { recorder: { failed: ':worker' } } },
      { _id: 'slow', trigger: { '/slow': {} }, workers: { slow: {} } },
      { _id: 'versioned', trigger: { '/versioned': {} }, workers: { versioned: {} } },
      { _id: 'queued', trigger: { '/queued': {} }, workers: { queued: {} } },
      { _id: 'sandboxed', trigger: { '/sandboxed': {} }, workers: { sandboxed: {} } },
      { _id: 'sh_echo', trigger: { '/sh/echo': {} }, workers: { sh_echo: { to: 'sh@example.com' } } },
      { _id: 'py_couch', trigger: { '/py/couch': {} }, workers: { py_couch: {} } },
    ] });
    await eventually(() => rt.catalog.matcher.size >= 11, 5_000, 'events loaded');
  });
  after(() => rt.stop());

  async function recorded(where: (doc: Record<string, any>) => boolean): Promise<Record<string, any> | undefined> {
    const page = await connect(couchUrl()).use<Record<string, any>>(records).list({ include_docs: true });
    return page.rows.map((r) => r.doc!).find(where);
  }

  it("the seed's send_email worker reads recipient from stdin and calls into someOtherScript.js (?wait=true)", async () => {
    const r = await call(rt, '/_events/email_event?wait=true');
    expect(r.status).to.equal(200);
    const o = r.body.outcomes[0];
    expect(o.status).to.equal('ok');
    expect(o.result).to.deep.equal({ to: 'support@yourcompany.com', signature: 'signed for support@yourcompany.com' });
    expect(o.logs.map((l: { msg: string }) => l.msg)).to.include('recipient from stdin: support@yourcompany.com');
  });

  it('a python worker emits an event that fires a second event, whose node worker records it', async () => {
    const r = await call(rt, '/_events/py/send?wait=true');
    expect(r.body.outcomes[0]).to.include({ worker: 'py_sender', status: 'ok' });
    let doc: Record<string, any> | undefined;
    await eventually(async () => !!(doc = await recorded((d) => d.path === '/py_sender/sent')), 10_000, 'the emitted event recorded');
    expect(doc!.trigger).to.equal('event');
    expect(doc!.parameters.to).to.equal('ops@example.com');
  });

  it('a failing worker reports error with its reason, and fires /lively/worker_error/<name>', async () => {
    const r = await call(rt, '/_events/fail?wait=true');
    expect(r.body.outcomes[0].status).to.equal('error');
    expect(r.body.outcomes[0].error.message).to.contain('boom');
    let doc: Record<string, any> | undefined;
    await eventually(async () => !!(doc = await recorded((d) => d.path === '/lively/worker_error/failing')), 10_000, 'the lifecycle event recorded');
    expect(doc!.trigger).to.equal('lively');
    expect(doc!.parameters.failed).to.equal('failing');
  });

  it('a worker whose concurrency and queue are full gets 503 for the next trigger; it works again after', async () => {
    expect((await call(rt, '/_events/slow?wait=true')).status).to.equal(200); // warm: its limits are known
    const first = await call(rt, '/_events/slow?ms=400');
    expect(first.status).to.equal(202);
    const second = await call(rt, '/_events/slow');
    expect(second.status).to.equal(503);
    expect(second.body.error).to.equal('LC_QUEUE_FULL');
    await eventually(async () => (await call(rt, '/_events/slow?wait=true')).status === 200, 5_000, 'slow worker free again');
  });

  it('a worker\'s own "queue" lets that many wait where the runtime lets none; past it 503, and every accepted trigger runs in order', async () => {
    expect((await call(rt, '/_events/queued?wait=true&n=0')).status).to.equal(200); // warm: its limits are known
    const holdDir = mkdtempSync(path.join(os.tmpdir(), 'lively-hold-'));
    try {
      const hold = path.join(holdDir, 'go');
      const held = request(rt.url + `/_events/queued?wait=true&n=1&hold=${encodeURIComponent(hold)}`).then(async (r) => (await r.body.json()) as Record<string, any>);
      await eventually(async () => (await call(rt, '/_lively/status')).body.dispatchers.find((d: { name: string }) => d.name === 'thread').inFlight === 1, 5_000, 'the first trigger running');
      const waiting = [2, 3].map((n) => request(rt.url + `/_events/queued?wait=true&n=${n}`).then(async (r) => ({ status: r.statusCode, body: (await r.body.json()) as Record<string, any> })));
      await eventually(async () => (await call(rt, '/_lively/status')).body.activations.waiting === 2, 5_000, 'two triggers waiting');
      const refused = await call(rt, '/_events/queued?n=4');
      expect(refused.status).to.equal(503);
      expect(refused.body).to.include({ error: 'LC_QUEUE_FULL' });
      expect(refused.body.reason).to.contain('worker "queued" is busy and its queue is full (2 waiting, its limit)');
      writeFileSync(hold, '');
      expect((await held).outcomes[0].result).to.deep.equal({ n: 1 });
      const [two, three] = await Promise.all(waiting);
      expect([two!.status, three!.status]).to.deep.equal([200, 200]);
      expect([two!.body.outcomes[0].result, three!.body.outcomes[0].result]).to.deep.equal([{ n: 2 }, { n: 3 }]);
    } finally {
      rmSync(holdDir, { recursive: true, force: true });
    }
    // Without a queue of its own, the runtime's (0 in this suite) applies: see the spec above.
  });

  it('editing a worker document changes what the next trigger returns, without a restart', async () => {
    expect((await call(rt, '/_events/versioned?wait=true')).body.outcomes[0].result).to.deep.equal({ version: 1 });
    const cur = await rt.db.workers.get('versioned');
    await rt.db.workers.insert({ ...cur, _attachments: { 'index.js': att(`module.exports = () => ({ version: 2 });`) } });
    await eventually(async () => (await call(rt, '/_events/versioned?wait=true')).body.outcomes[0].result?.version === 2, 5_000, 'new revision served');
  });

  it('an isolate worker returns a result and sees no process', async () => {
    const r = await call(rt, '/_events/sandboxed?n=21&wait=true');
    expect(r.body.outcomes[0]).to.include({ status: 'ok' });
    // query values are strings: "21" * 2 is 42 in JavaScript
    expect(r.body.outcomes[0].result).to.deep.equal({ doubled: 42, hasProcess: false });
  });

  it('/_lively/status names the isolate engine: the isolated-vm major built for the running Node', async () => {
    const { body } = await call(rt, '/_lively/status');
    const isolatedVmMajor: Record<string, number> = { 20: 5, 22: 6, 24: 6, 26: 7 };
    const nodeMajor = process.versions.node.split('.')[0]!;
    expect(body.isolateEngine).to.include({ package: `@livelycouch/isolated-vm-${isolatedVmMajor[nodeMajor]}`, node: process.versions.node });
    expect(body.isolateEngine.version.split('.')[0]).to.equal(String(isolatedVmMajor[nodeMajor]));
    expect(body.isolateEngine).to.not.have.property('error');
  });

  it('a sh worker reads its arguments from stdin and answers from one kept process', async () => {
    const a = await call(rt, '/_events/sh/echo?wait=true');
    const b = await call(rt, '/_events/sh/echo?wait=true');
    expect(a.body.outcomes[0]).to.include({ status: 'ok' });
    expect(a.body.outcomes[0].result.to).to.equal('sh@example.com');
    expect(b.body.outcomes[0].result.pid).to.equal(a.body.outcomes[0].result.pid);
  });

  it('"couch": true gives a process worker its own non-admin CouchDB user, admitted only where its role is', async () => {
    const nano = connect(couchUrl());
    const granted = `${rt.config.dbPrefix}granted`;
    const closed = `${rt.config.dbPrefix}closed`;
    for (const [db, roles] of [[granted, ['lively_worker_py_couch']], [closed, ['_admin']]] as const) {
      await nano.db.create(db);
      await nano.use<Record<string, unknown>>(db).insert({ _id: 'doc' });
      await nano.request({ db, path: '_security', method: 'PUT', body: { admins: { names: [], roles: [] }, members: { names: [], roles } } });
    }
    const cur = await rt.db.workers.get('py_couch');
    await rt.db.workers.insert({ ...cur, arguments: { granted, closed } });
    let r: { status: number; body: Record<string, any> } | undefined;
    await eventually(async () => (r = await call(rt, '/_events/py/couch?wait=true')).body.outcomes[0].result?.granted !== undefined, 10_000, 'worker with its arguments');
    const result = r!.body.outcomes[0].result;
    expect(result.user).to.equal('lively_worker_py_couch');
    expect(result.roles).to.include('lively_worker');
    expect(result.roles).to.not.include('_admin');
    expect(result.granted).to.equal(200);
    expect([401, 403]).to.include(result.closed);
    expect(result.admin_in_env).to.equal(false);
  });

  it('an unknown type and a missing interpreter fail each activation with a clear code, and show in /_lively/status', async () => {
    const script = att('print(1)', 'text/plain');
    await rt.db.workers.bulk({ docs: [
      { _id: 'cobol_worker', type: 'cobol', delegate: 'main.cob', _attachments: { 'main.cob': script } },
      { _id: 'lua_worker', type: 'lua', delegate: 'main.lua', _attachments: { 'main.lua': script } },
    ] });
    await rt.db.events.insert({ _id: 'odd_types', trigger: { '/odd/types': {} }, workers: { cobol_worker: {}, lua_worker: {} } });
    await eventually(() => !!rt.catalog.get('odd_types'), 5_000, 'event loaded');
    const r = await call(rt, '/_events/odd/types?wait=true');
    const codes = Object.fromEntries(r.body.outcomes.map((o: { worker: string; status: string; error: { code: string } }) => [o.worker, `${o.status}:${o.error.code}`]));
    expect(codes).to.deep.equal({ cobol_worker: 'error:LC_UNKNOWN_TYPE', lua_worker: 'error:LC_INTERPRETER_MISSING' });
    const status = await call(rt, '/_lively/status');
    const problems = Object.fromEntries(status.body.workers.problems.map((p: { id: string; code: string }) => [p.id, p.code]));
    expect(problems).to.include({ cobol_worker: 'LC_UNKNOWN_TYPE', lua_worker: 'LC_INTERPRETER_MISSING' });
    expect((await call(rt, '/_events/email_event?wait=true')).body.outcomes[0].status).to.equal('ok');
  });

  it('a node worker run as a process ("isolation": "process") has the helper API: emit, log, result and its own couch user', async () => {
    await rt.db.workers.insert({ _id: 'node_proc', type: 'node', isolation: 'process', couch: true, delegate: 'main.js', _attachments: { 'main.js': att(`const { emit, log, result, couch } = require('livelycouch/worker');
require('readline').createInterface({ input: process.stdin }).on('line', async (line) => {
  const msg = JSON.parse(line);
  log('handling ' + msg.activation);
  emit('sent', { to: msg.arguments.to });
  const session = await couch.session();
  result({ pid: process.pid, user: session.userCtx.name });
});`) } });
    await rt.db.events.bulk({ docs: [
      { _id: 'node_proc', trigger: { '/node/proc': {} }, workers: { node_proc: { to: 'proc@example.com' } } },
      { _id: 'on_node_proc_sent', trigger: { '/node_proc/sent': {} }, workers: { recorder: {} } },
    ] });
    await eventually(() => !!rt.catalog.get('on_node_proc_sent') && !!rt.catalog.get('node_proc'), 5_000, 'events loaded');
    const r = await call(rt, '/_events/node/proc?wait=true');
    const o = r.body.outcomes[0];
    expect(o.status, JSON.stringify(o)).to.equal('ok');
    expect(o.result?.user, JSON.stringify(o)).to.equal('lively_worker_node_proc');
    expect(o.result.pid).to.not.equal(process.pid);
    expect(o.logs.map((l: { msg: string }) => l.msg)).to.include(`handling ${r.body.activation}`);
    let doc: Record<string, any> | undefined;
    await eventually(async () => !!(doc = await recorded((d) => d.path === '/node_proc/sent')), 10_000, 'the emitted event recorded');
    expect(doc!.parameters.to).to.equal('proc@example.com');
  });
});
