/**
 * Hole 1 and 2 of the security review: the databases the runtime creates — its state
 * (`<prefix>logs`), the activation records (`<prefix>logs-YYYYMMDD`), the durable journal
 * (`<prefix>durable_YYYYMMDD`) and the secrets (`<prefix>secrets`) — are for server admins only,
 * and the events and workers databases for admins and the writer role: no read and no write, of
 * ordinary or `_local` documents, by any route (`_find` and `_bulk_get` included), directly on
 * the store and through the runtime's proxy. On the embedded store the shield enforces this.
 */
import { expect } from 'chai';
import type { Runtime } from '../../src/runtime.ts';
import { dropPrefix, uniquePrefix } from '../support/couch.ts';
import { eventually, startRuntime } from '../support/runtime.ts';
import { call, dropUsers, makeUser, storeOrigin, type User, type Who } from './support.ts';

const att = (code: string) => ({ content_type: 'application/javascript', data: Buffer.from(code).toString('base64') });

describe('security: who may reach the runtime\'s own databases', function () {
  this.timeout(60_000);
  const prefix = uniquePrefix();
  let rt: Runtime;
  let plain: User;
  let writer: User;
  const dbs: Record<string, string> = {};

  before(async () => {
    plain = await makeUser(prefix, 'plain');
    writer = await makeUser(prefix, 'writer', [`${prefix}deployers`]);
    rt = await startRuntime({ config: { dbPrefix: prefix, writerRole: `${prefix}deployers` } });
    await rt.db.workers.insert({ _id: 'ok', type: 'node', delegate: 'index.js', env: { API_TOKEN: 'sk-live-123' }, _attachments: { 'index.js': att('module.exports = async () => ({ ok: true });') } } as never);
    await rt.db.events.insert({ _id: 'kept', durable: true, trigger: { '/kept': {} }, workers: { ok: {} } } as never);
    await eventually(() => !!rt.catalog.get('kept'), 5_000, 'event loaded');
    const res = await fetch(`${rt.url}/_events/kept?wait=true`);
    expect(res.status).to.equal(200);
    await rt.activationLog.flush();
    const all = await rt.nano.db.list();
    dbs.state = `${prefix}logs`;
    dbs.secrets = `${prefix}secrets`;
    dbs.activations = all.find((d) => d.startsWith(`${prefix}logs-`))!;
    dbs.durable = all.find((d) => d.startsWith(`${prefix}durable_`))!;
    expect(dbs.activations, 'the activation records database exists').to.be.a('string');
    expect(dbs.durable, 'the durable journal database exists').to.be.a('string');
  });

  after(async () => {
    await rt?.stop();
    await dropPrefix(prefix);
    await dropUsers([plain, writer].filter(Boolean));
  });

  /** Every way into a database a client might try, reading and writing. */
  function attempts(db: string): Array<[string, string, unknown?]> {
    return [
      ['GET', `/${db}`],
      ['GET', `/${db}/_all_docs`],
      ['GET', `/${db}/_changes`],
      ['POST', `/${db}/_find`, { selector: {} }],
      ['POST', `/${db}/_bulk_get`, { docs: [{ id: 'x' }] }],
      ['GET', `/${db}/_local/x`],
      ['PUT', `/${db}/planted`, { last: 99999999999999 }],
      ['PUT', `/${db}/_local/planted`, { seq: '99999999' }],
      ['POST', `/${db}/_bulk_docs`, { docs: [{ _id: 'bulk_planted' }, { _id: '_local/bulk_planted' }] }],
      ['POST', `/${db}`, { _id: 'posted' }],
      ['GET', `/${db}/_security`],
    ];
  }

  for (const kind of ['state', 'activations', 'durable', 'secrets'] as const) {
    it(`${kind}: anonymous (401), a wrong password (401), a user and the writer role (403) reach nothing, directly or through the proxy`, async () => {
      const db = dbs[kind]!;
      for (const [base, via] of [[storeOrigin(), 'store'], [rt.url, 'proxy']] as const) {
        for (const [who, status] of [['anonymous', 401], ['wrong password', 401], [plain, 403], [writer, 403]] as Array<[Who, number]>) {
          for (const [method, path, body] of attempts(db)) {
            const res = await call(base, method, path, who, body);
            expect(res.status, `${method} ${path} as ${typeof who === 'string' ? who : who.name} via ${via}: ${JSON.stringify(res.body)}`).to.equal(status);
          }
        }
      }
      // nothing was planted, and an admin still reads and writes (the checks can pass)
      const ids = (await call(storeOrigin(), 'GET', `/${db}/_all_docs`, 'admin')).body.rows.map((r: { id: string }) => r.id);
      expect(ids.filter((id: string) => /planted|posted/.test(id))).to.deep.equal([]);
      expect((await call(rt.url, 'PUT', `/${db}/_local/admin_wrote`, 'admin', { ok: true })).status).to.equal(201);
      expect((await call(storeOrigin(), 'GET', `/${db}/_local/planted`, 'admin')).status).to.equal(404);
    });
  }

  for (const kind of ['events', 'workers'] as const) {
    it(`${kind}: not readable by anonymous (401) or a plain user (403), directly or through the proxy; the writer role and admins read`, async () => {
      const db = `${prefix}${kind}`;
      const doc = kind === 'workers' ? 'ok' : 'kept';
      for (const base of [storeOrigin(), rt.url]) {
        for (const [method, path, body] of [['GET', `/${db}/${doc}`], ['GET', `/${db}/_all_docs?include_docs=true`], ['POST', `/${db}/_find`, { selector: {} }], ['POST', `/${db}/_bulk_get`, { docs: [{ id: doc }] }], ['GET', `/${db}/_changes?include_docs=true`], ['GET', `/${db}/_local/x`], ['PUT', `/${db}/_local/x`, {}]] as Array<[string, string, unknown?]>) {
          for (const [who, status] of [['anonymous', 401], ['wrong password', 401], [plain, 403]] as Array<[Who, number]>) {
            const res = await call(base, method, path, who, body);
            expect(res.status, `${method} ${path} as ${typeof who === 'string' ? who : who.name}`).to.equal(status);
            expect(JSON.stringify(res.body)).to.not.contain('sk-live-123');
          }
        }
        for (const who of [writer, 'admin'] as Who[]) {
          const res = await call(base, 'GET', `/${db}/${doc}`, who);
          expect(res.status).to.equal(200);
        }
      }
    });
  }

  it('a member of a database cannot rewrite its _security through the document _local/_security', async () => {
    const db = `${prefix}open`;
    expect((await call(storeOrigin(), 'PUT', `/${db}`, 'admin')).status).to.equal(201);
    const security = { admins: { names: [], roles: ['_admin'] }, members: { names: [plain.name], roles: [] } };
    expect((await call(storeOrigin(), 'PUT', `/${db}/_security`, 'admin', security)).status).to.equal(200);
    // with the revision a member can read (on CouchDB the document does not exist: no revision)
    const current = await call(storeOrigin(), 'GET', `/${db}/_local/_security`, plain);
    const rev = current.status === 200 ? { _rev: current.body._rev } : {};
    const takeover = { _id: '_local/_security', ...rev, security: { admins: { names: [plain.name], roles: [] }, members: { names: [], roles: [] } } };
    await call(storeOrigin(), 'PUT', `/${db}/_local/_security`, plain, takeover);
    await call(storeOrigin(), 'POST', `/${db}/_bulk_docs`, plain, { docs: [takeover] });
    await call(storeOrigin(), 'POST', `/${db}`, plain, takeover);
    expect((await call(storeOrigin(), 'GET', `/${db}/_security`, 'admin')).body).to.deep.equal(security);
    // still a member only: a design document needs a db admin
    const ddoc = await call(storeOrigin(), 'PUT', `/${db}/_design/x`, plain, { views: {} });
    expect(ddoc.status).to.be.oneOf([401, 403]);
    expect((await call(storeOrigin(), 'GET', `/${db}`, 'anonymous')).status).to.equal(401);
  });
});
