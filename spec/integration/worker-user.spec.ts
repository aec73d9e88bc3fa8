/**
 * A node worker run as a process with `"couch": true` logs in as its own CouchDB user, waits on
 * the store as long as the store takes (a waiting worker looks idle to the runtime: the helper
 * says it acknowledges), and does so again after the runtime restarts and rotated its password.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import type { Runtime } from '../../src/runtime.ts';
import { connect } from '../../src/store/couch.ts';
import { workerUserName } from '../../src/core/worker-credentials.ts';
import { dropPrefix, uniquePrefix, couchUrl } from '../support/couch.ts';
import { eventually, startRuntime } from '../support/runtime.ts';

const att = (code: string) => ({ content_type: 'application/javascript', data: Buffer.from(code).toString('base64') });

// Waits well past the runtime's silence rule (150 ms) before answering, as a slow store would.
const worker = att(`const { result, couch } = require('livelycouch/worker');
require('readline').createInterface({ input: process.stdin }).on('line', async () => {
  const session = await couch.session();
  await new Promise((r) => setTimeout(r, 600));
  result({ user: session.userCtx.name, roles: session.userCtx.roles });
});`);

describe('a process worker\'s own CouchDB user', function () {
  this.timeout(30_000);
  const prefix = uniquePrefix();
  const id = `${prefix}own_user`;
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lively-worker-user-'));
  let rt: Runtime | undefined;

  async function start(): Promise<Runtime> {
    return startRuntime({ config: { dbPrefix: prefix, dataDir } });
  }
  async function fire(r: Runtime) {
    const res = await request(`${r.url}/_events/who?wait=true`);
    return ((await res.body.json()) as { outcomes: Array<{ status: string; result?: { user: string; roles: string[] } }> }).outcomes[0]!;
  }

  before(async () => {
    rt = await start();
    await rt.db.workers.insert({ _id: id, type: 'node', isolation: 'process', couch: true, delegate: 'main.js', _attachments: { 'main.js': worker } } as never);
    await rt.db.events.insert({ _id: 'who', trigger: { '/who': {} }, workers: { [id]: {} } } as never);
    await eventually(async () => !!rt!.catalog.get('who'), 5_000, 'event loaded');
  });
  after(async () => {
    await rt?.stop();
    const users = connect(couchUrl()).use<{ _rev: string }>('_users');
    const doc = await users.get(`org.couchdb.user:${workerUserName(id)}`).catch(() => undefined);
    if (doc) await users.destroy(doc._id, doc._rev).catch(() => undefined);
    await dropPrefix(prefix);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('logs in as lively_worker_<id>, is no admin, and its answer is waited for', async () => {
    const o = await fire(rt!);
    expect(o.status, JSON.stringify(o)).to.equal('ok');
    expect(o.result?.user, JSON.stringify(o)).to.equal(workerUserName(id));
    expect(o.result!.roles).to.include('lively_worker').and.not.include('_admin');
  });

  it('logs in again after the runtime restarted and gave it a new password', async () => {
    const users = connect(couchUrl()).use<{ _rev: string }>('_users');
    const before = (await users.get(`org.couchdb.user:${workerUserName(id)}`))._rev;
    await rt!.stop();
    rt = await start();
    await eventually(async () => !!rt!.catalog.get('who'), 5_000, 'event loaded');
    const o = await fire(rt);
    expect(o.status, JSON.stringify(o)).to.equal('ok');
    expect(o.result?.user, JSON.stringify(o)).to.equal(workerUserName(id));
    expect((await users.get(`org.couchdb.user:${workerUserName(id)}`))._rev, 'the password was rotated').to.not.equal(before);
  });
});
