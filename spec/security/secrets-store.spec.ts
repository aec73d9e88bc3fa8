/**
 * Hole 3 of the security review: secrets. Set, listed (names only) and removed with the CLI
 * (`livelycouch secret …`, value from stdin) through the admin API; kept in `<prefix>secrets`,
 * apart from the app's databases; named by a worker document (`"secrets": ["MAIL_TOKEN"]`);
 * given to process workers as environment variables and to thread and isolate workers as
 * `ctx.secrets`; a changed secret reaches the next message; a missing one fails the message with
 * LC_SECRET_MISSING; and no value appears in replies, logs, status or activation records.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import type { Runtime } from '../../src/runtime.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { adminHeaders, couchUrl, dropPrefix, uniquePrefix } from '../support/couch.ts';
import { eventually, startRuntime } from '../support/runtime.ts';

const att = (code: string, type = 'application/javascript') => ({ content_type: type, data: Buffer.from(code).toString('base64') });
const kMain = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/** Runs the CLI against the runtime with the suite's admin; stdin is `input`. */
function cli(rt: Runtime, args: string[], input = ''): Promise<{ code: number | null; out: string; err: string }> {
  const admin = new URL(couchUrl());
  const env: NodeJS.ProcessEnv = { ...process.env, LIVELY_URL: rt.url, LIVELY_USER: `${decodeURIComponent(admin.username)}:${decodeURIComponent(admin.password)}` };
  delete env.COUCHDB_URL;
  const proc = spawn(process.execPath, ['--no-node-snapshot', '--import', 'tsx', kMain, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.setEncoding('utf8').on('data', (s: string) => { out += s; });
  proc.stderr.setEncoding('utf8').on('data', (s: string) => { err += s; });
  proc.stdin.end(input);
  return new Promise((resolve) => proc.on('close', (code) => resolve({ code, out, err })));
}

async function fire(rt: Runtime, path: string): Promise<any> {
  const res = await request(`${rt.url}/_events${path}?wait=true`);
  return res.body.json();
}

describe('security: secrets', function () {
  this.timeout(90_000);
  const prefix = uniquePrefix();
  const first = `mt-${randomBytes(12).toString('hex')}`;
  const second = `mt-${randomBytes(12).toString('hex')}-changed`;
  const lines: string[] = [];
  let rt: Runtime;

  before(async () => {
    rt = await startRuntime({ config: { dbPrefix: prefix, logLevel: 'debug' }, logger: createLogger({ level: 'debug', format: 'json', write: (l) => lines.push(l) }) });
    await rt.db.workers.bulk({ docs: [
      { _id: 'thread_w', type: 'node', delegate: 'index.js', secrets: ['MAIL_TOKEN'], _attachments: { 'index.js': att(`module.exports = async (msg, ctx) => {
  console.log('token is ' + ctx.secrets.MAIL_TOKEN);
  return { names: Object.keys(ctx.secrets), length: ctx.secrets.MAIL_TOKEN.length, echoed: ctx.secrets.MAIL_TOKEN, env: process.env.MAIL_TOKEN === undefined };
};`) } },
      { _id: 'isolate_w', type: 'isolate', delegate: 'index.js', secrets: ['MAIL_TOKEN'], _attachments: { 'index.js': att(`module.exports = async (msg, ctx) => ({ names: Object.keys(ctx.secrets), length: ctx.secrets.MAIL_TOKEN.length, echoed: ctx.secrets.MAIL_TOKEN });`) } },
      { _id: 'process_w', type: 'sh', delegate: 'main.sh', secrets: ['MAIL_TOKEN'], _attachments: { 'main.sh': att(`while read line; do
  echo "token is $MAIL_TOKEN" >&2
  echo "{\\"result\\": {\\"length\\": \${#MAIL_TOKEN}, \\"echoed\\": \\"$MAIL_TOKEN\\"}}"
done
`, 'text/x-sh') } },
      { _id: 'unnamed', type: 'node', delegate: 'index.js', _attachments: { 'index.js': att(`module.exports = async (msg, ctx) => ({ names: Object.keys(ctx.secrets) });`) } },
      { _id: 'wants_missing', type: 'node', delegate: 'index.js', secrets: ['NOT_SET_ANYWHERE'], _attachments: { 'index.js': att(`module.exports = async () => ({ ran: true });`) } },
    ] });
    await rt.db.events.bulk({ docs: [
      { _id: 'all', trigger: { '/all': {} }, workers: { thread_w: {}, isolate_w: {}, process_w: {}, unnamed: {} } },
      { _id: 'missing', trigger: { '/missing': {} }, workers: { wants_missing: {} } },
    ] });
    await eventually(() => rt.catalog.matcher.size >= 2, 5_000, 'events loaded');
  });

  after(async () => {
    await rt?.stop();
    await dropPrefix(prefix);
  });

  it('livelycouch secret set NAME reads the value from stdin; list shows names only', async () => {
    const set = await cli(rt, ['secret', 'set', 'MAIL_TOKEN'], `${first}\n`);
    expect(set.code, set.err).to.equal(0);
    expect(set.out).to.equal('set secret MAIL_TOKEN\n');
    const list = await cli(rt, ['secret', 'list']);
    expect(list.code, list.err).to.equal(0);
    expect(list.out).to.equal('MAIL_TOKEN\n');
    for (const text of [set.out, set.err, list.out, list.err]) expect(text).to.not.contain(first);
    // kept apart from the app: not in the events or workers databases
    const doc = await rt.nano.use<{ value: string }>(`${prefix}secrets`).get('MAIL_TOKEN');
    expect(doc.value).to.equal(first);
    for (const db of [rt.db.events, rt.db.workers]) expect(JSON.stringify(await db.list({ include_docs: true }))).to.not.contain(first);
  });

  it('thread and isolate workers get ctx.secrets, process workers environment variables; only those named', async () => {
    const reply = await fire(rt, '/all');
    const by = Object.fromEntries(reply.outcomes.map((o: { worker: string }) => [o.worker, o]));
    for (const w of ['thread_w', 'isolate_w', 'process_w']) {
      expect(by[w].status, JSON.stringify(by[w])).to.equal('ok');
      expect(by[w].result.length).to.equal(first.length);
    }
    expect(by.thread_w.result.names).to.deep.equal(['MAIL_TOKEN']);
    expect(by.thread_w.result.env, 'not in the thread worker\'s process.env').to.equal(true);
    expect(by.isolate_w.result.names).to.deep.equal(['MAIL_TOKEN']);
    expect(by.unnamed.result.names).to.deep.equal([]);
    // the value itself is redacted wherever a worker put it
    expect(JSON.stringify(reply)).to.not.contain(first);
    expect(by.thread_w.result.echoed).to.equal('[redacted]');
    expect(by.thread_w.logs.map((l: { msg: string }) => l.msg)).to.include('token is [redacted]');
  });

  it('a changed secret reaches the next message, process workers included', async () => {
    const res = await request(`${rt.url}/_lively/secrets/MAIL_TOKEN`, { method: 'PUT', headers: { ...adminHeaders(), 'content-type': 'application/json' }, body: JSON.stringify({ value: second }) });
    expect(res.statusCode).to.equal(201);
    expect(await res.body.json()).to.deep.equal({ ok: true, name: 'MAIL_TOKEN', created: false });
    const reply = await fire(rt, '/all');
    for (const o of reply.outcomes.filter((x: { worker: string }) => x.worker !== 'unnamed')) {
      expect(o.status, JSON.stringify(o)).to.equal('ok');
      expect(o.result.length, o.worker).to.equal(second.length);
    }
  });

  it('a worker naming a secret that is not set fails with LC_SECRET_MISSING naming it, and does not run', async () => {
    const reply = await fire(rt, '/missing');
    expect(reply.outcomes[0].status).to.equal('error');
    expect(reply.outcomes[0].error.code).to.equal('LC_SECRET_MISSING');
    expect(reply.outcomes[0].error.message).to.contain('NOT_SET_ANYWHERE');
  });

  it('validate_doc_update refuses a worker whose "secrets" is not a list of names, naming the field', async () => {
    const err = await rt.db.workers.insert({ _id: 'bad', type: 'node', delegate: 'index.js', secrets: 'MAIL_TOKEN' } as never).then(() => undefined, (e) => e);
    expect(err?.statusCode).to.equal(403);
    expect(String(err.reason ?? err.message)).to.match(/^secrets: must be a list/);
  });

  it('no value in the runtime\'s log, status, metrics or activation records; rm removes it', async () => {
    await rt.activationLog.flush();
    const records = await request(`${rt.url}/_lively/activations?limit=100`, { headers: adminHeaders() });
    const status = await request(`${rt.url}/_lively/status`, { headers: adminHeaders() });
    const metrics = await request(`${rt.url}/_lively/metrics`, { headers: adminHeaders() });
    const texts = [await records.body.text(), await status.body.text(), await metrics.body.text(), ...lines];
    expect(texts[0]).to.contain('thread_w');
    for (const t of texts) {
      expect(t).to.not.contain(first);
      expect(t).to.not.contain(second);
    }
    const rm = await cli(rt, ['secret', 'rm', 'MAIL_TOKEN']);
    expect(rm.code, rm.err).to.equal(0);
    expect(rm.out).to.equal('removed secret MAIL_TOKEN\n');
    expect((await cli(rt, ['secret', 'list'])).out).to.equal('');
    const again = await cli(rt, ['secret', 'rm', 'MAIL_TOKEN']);
    expect(again.code).to.equal(1);
    expect(again.err).to.match(/^livelycouch secret: 404 LC_NOT_FOUND: no secret "MAIL_TOKEN"/);
  });
});
