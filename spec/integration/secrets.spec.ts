/**
 * No password anywhere: the runtime runs with a capturing logger at debug level on a CouchDB
 * URL that carries the admin password; users log in with right and wrong passwords (Basic
 * auth and sessions through the proxy), workers fail in each way they can, a runtime is
 * started with a wrong COUCHDB_URL password; then every captured log line, every reply,
 * the status output, the metrics and the activation records read through the API are
 * scanned for each password, in plain, URL-encoded and Basic-token form. The same scan runs
 * over the output of `livelycouch start` with its own embedded store.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import type { Runtime } from '../../src/runtime.ts';
import { connect } from '../../src/store/couch.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { adminPassword } from '../../src/store/embedded/supervisor.ts';
import { adminHeaders, basicAuth, couchUrl, uniquePrefix } from '../support/couch.ts';
import { eventually, startRuntime } from '../support/runtime.ts';
import { ended, removeDir } from '../support/cleanup.ts';

const att = (code: string, type = 'application/javascript') => ({ content_type: type, data: Buffer.from(code).toString('base64') });

/** Every form a password could leak in. */
function forms(name: string, password: string): string[] {
  return [
    password,
    encodeURIComponent(password),
    new URLSearchParams({ p: password }).toString().slice(2), // a form body
    JSON.stringify(password).slice(1, -1), // inside a JSON string (a log line, a reply)
    Buffer.from(`${name}:${password}`).toString('base64'),
  ];
}

function leaks(texts: string[], secrets: string[]): string[] {
  const found: string[] = [];
  for (const s of secrets) {
    for (const t of texts) {
      if (t.includes(s)) found.push(`${JSON.stringify(s)} in ${t.slice(0, 300)}`);
    }
  }
  return found;
}

describe('secrets: no password in logs, replies, status, metrics or activation records', function () {
  this.timeout(60_000);
  const prefix = uniquePrefix();
  const admin = new URL(couchUrl());
  const adminName = decodeURIComponent(admin.username);
  const adminPw = decodeURIComponent(admin.password);
  const user = { name: `${prefix}erin`, password: `Erin-${randomBytes(6).toString('hex')}-%:@/"x` };
  const wrong = [`Wrong-${randomBytes(6).toString('hex')}`, `Wrong-${randomBytes(6).toString('hex')}:@`];
  const lines: string[] = [];
  const seen: string[] = [];
  let rt: Runtime;

  before(async function () {
    if (!adminPw) this.skip(); // a store without an admin password has nothing to leak
    await connect(couchUrl()).use('_users').insert({ _id: `org.couchdb.user:${user.name}`, name: user.name, password: user.password, roles: ['staff'], type: 'user' } as never);
    rt = await startRuntime({ config: { dbPrefix: prefix, logLevel: 'debug' }, logger: createLogger({ level: 'debug', format: 'json', write: (l) => lines.push(l) }) });
    await rt.db.workers.bulk({ docs: [
      { _id: 'thrower', type: 'node', delegate: 'index.js', _attachments: { 'index.js': att(`module.exports = async (msg) => { console.log('handling', msg.path); throw new Error('failed for ' + msg.path); };`) } },
      { _id: 'stuck', type: 'node', delegate: 'index.js', timeout: 0.3, _attachments: { 'index.js': att(`module.exports = () => new Promise(() => {});`) } },
      { _id: 'py_exit', type: 'python', delegate: 'main.py', _attachments: { 'main.py': att(`import sys
for line in sys.stdin:
    sys.stderr.write("giving up\\n")
    sys.exit(3)
`, 'text/x-python') } },
      { _id: 'fine', type: 'node', delegate: 'index.js', _attachments: { 'index.js': att(`module.exports = async () => ({ ok: true });`) } },
      // A careless worker: prints the CouchDB URL it was given (with the password) and fails with it.
      { _id: 'careless', type: 'node', couch: true, delegate: 'index.js', _attachments: { 'index.js': att(`module.exports = async () => {
  console.log('connecting to ' + process.env.COUCHDB_URL);
  console.error(JSON.stringify({ password: new URL(process.env.COUCHDB_URL).password }));
  throw new Error('cannot reach ' + process.env.COUCHDB_URL);
};`) } },
    ] });
    await rt.db.events.bulk({ docs: [
      { _id: 'guarded', auth: 'user', trigger: { '/guarded': {} }, workers: { thrower: {}, stuck: {}, py_exit: {} } },
      { _id: 'staff_only', auth: { roles: ['staff'] }, trigger: { '/staff': {} }, workers: { fine: {}, careless: {} } },
      { _id: 'admins', auth: 'admin', trigger: { '/admins': {} }, workers: { fine: {} } },
    ] });
    await eventually(() => rt.catalog.matcher.size >= 3, 5_000, 'events loaded');
  });
  after(async () => {
    await rt?.stop();
    const db = connect(couchUrl()).use('_users');
    const doc = await db.get(`org.couchdb.user:${user.name}`).catch(() => undefined);
    if (doc) await db.destroy(doc._id, doc._rev).catch(() => undefined);
  });

  async function call(p: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<number> {
    const res = await request(rt.url + p, { method: (init.method ?? 'GET') as 'GET', headers: init.headers, body: init.body });
    seen.push(`${res.statusCode} ${JSON.stringify(res.headers)} ${await res.body.text()}`);
    return res.statusCode;
  }

  it('after logins, refusals and failing workers, no password form appears in anything captured', async () => {
    const asUser = { authorization: basicAuth(user.name, user.password) };
    // Right and wrong passwords, Basic auth.
    expect(await call('/_events/guarded?wait=true', { headers: asUser })).to.equal(200);
    for (const w of wrong) expect(await call('/_events/guarded?wait=true', { headers: { authorization: basicAuth(user.name, w) } })).to.equal(401);
    expect(await call('/_events/admins', { headers: asUser })).to.equal(403);
    expect(await call('/_events/staff?wait=true', { headers: asUser })).to.equal(200);
    // Sessions through the proxy: a wrong login, a right one, then a trigger with the cookie.
    expect(await call('/_session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: user.name, password: wrong[0] }) })).to.equal(401);
    const login = await request(`${rt.url}/_session`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ name: user.name, password: user.password }).toString() });
    seen.push(await login.body.text());
    expect(login.statusCode).to.equal(200);
    const cookie = String([login.headers['set-cookie']].flat()[0]).split(';')[0]!;
    expect(await call('/_events/guarded?wait=true', { headers: { cookie } })).to.equal(200);
    // Passwords where they do not belong: query strings, a no-match path, the admin API.
    expect(await call(`/_events/nothing?password=${encodeURIComponent(user.password)}`)).to.equal(404);
    expect(await call(`/_events/guarded?password=${encodeURIComponent(wrong[1]!)}`)).to.equal(401);
    expect(await call('/_lively/status', { headers: { authorization: basicAuth(adminName, wrong[1]!) } })).to.equal(401);
    expect(await call('/_lively/status', { headers: asUser })).to.equal(403);
    // A runtime given a COUCHDB_URL with a wrong password fails to start, saying why.
    // (as the user, not the admin: CouchDB 3.4+ counts failed logins per name, and the admin's
    // failures would lock the rest of the suite out of the store)
    const badUrl = new URL(couchUrl());
    badUrl.username = encodeURIComponent(user.name);
    badUrl.password = encodeURIComponent(wrong[1]!);
    const failed = await startRuntime({ config: { couchUrl: badUrl.toString(), logLevel: 'debug' }, logger: createLogger({ level: 'debug', format: 'json', write: (l) => lines.push(l) }) })
      .then((r) => r.stop().then(() => undefined), (e: unknown) => e as Error);
    expect(failed, 'the runtime with a wrong password did not start').to.be.instanceOf(Error);
    seen.push(String(failed!.message), String(failed!.stack));

    // What an operator reads: status, metrics, the activation records.
    const outputs: string[] = [];
    for (const p of ['/_lively/status', '/_lively/metrics', '/_lively/activations?limit=100']) {
      const res = await request(rt.url + p, { headers: adminHeaders() });
      expect(res.statusCode, p).to.equal(200);
      outputs.push(await res.body.text());
    }
    const activations = JSON.parse(outputs[2]!).activations as Array<{ workers: Array<{ worker: string; status: string; error?: { code: string } }> }>;
    const outcomes = activations.flatMap((a) => a.workers.map((w) => `${w.worker}:${w.status}`));
    // The scan covered each kind of failure.
    expect(outcomes).to.include.members(['thrower:error', 'stuck:timeout', 'py_exit:error', 'fine:ok', 'careless:error']);
    // What the careless worker said is there, with the password taken out.
    expect(outputs[2]).to.contain('cannot reach http://').and.to.contain('connecting to http://');
    await rt.stop();

    const captured = [...lines, ...seen, ...outputs];
    const secrets = [...forms(adminName, adminPw), ...forms(user.name, user.password), ...wrong.flatMap((w) => [...forms(user.name, w), ...forms(adminName, w)])];
    // The scan is over real material: debug lines, the start line naming the (redacted) store URL.
    expect(lines.some((l) => JSON.parse(l).level === 'debug')).to.equal(true);
    expect(lines.find((l) => JSON.parse(l).msg === 'livelycouch starting')).to.contain(`${admin.hostname}:${admin.port}`);
    expect(lines.length).to.be.above(10);
    const found = leaks(captured, secrets);
    expect(found, found.slice(0, 5).join('\n')).to.deep.equal([]);
  });
});

describe('secrets: `livelycouch start` with its embedded store', function () {
  this.timeout(60_000);
  const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

  it('writes JSON lines (LIVELY_LOG_FORMAT=json) at debug level without the store admin password', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lively-secrets-'));
    const env: NodeJS.ProcessEnv = { ...process.env, LIVELY_LOG_FORMAT: 'json' };
    delete env.COUCHDB_URL;
    const proc = spawn(process.execPath, ['--no-node-snapshot', '--import', 'tsx', main, 'start', '--port', '0', '--data', dataDir, '--no-sample', '--log-level', 'debug'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: string[] = [];
    const err: string[] = [];
    createInterface({ input: proc.stderr! }).on('line', (l) => err.push(l));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        proc.once('exit', (code) => reject(new Error(`livelycouch start exited with ${code}: ${err.join('\n')}`)));
        createInterface({ input: proc.stdout! }).on('line', (line) => {
          out.push(line);
          const m = /listening on (\S+)/.exec(line);
          if (m) resolve(m[1]!);
        });
      });
      const password = adminPassword(dataDir);
      const good = await request(`${url}/_lively/status`, { headers: { authorization: basicAuth('lively', password) } });
      out.push(await good.body.text());
      expect(good.statusCode).to.equal(200);
      const bad = await request(`${url}/_lively/status`, { headers: { authorization: basicAuth('lively', `${password}x`) } });
      out.push(await bad.body.text());
      expect(bad.statusCode).to.equal(401);
      proc.kill('SIGTERM');
      await new Promise((r) => (proc.exitCode !== null ? r(undefined) : proc.once('exit', r)));
      expect(err.length).to.be.above(3);
      // Production format: every stderr line is one JSON object.
      for (const l of err) expect(() => JSON.parse(l), l).to.not.throw();
      expect(err.some((l) => JSON.parse(l).level === 'debug')).to.equal(true);
      const found = leaks([...out, ...err], forms('lively', password));
      expect(found, found.slice(0, 5).join('\n')).to.deep.equal([]);
    } finally {
      await ended(proc);
      removeDir(dataDir);
    }
  });
});
