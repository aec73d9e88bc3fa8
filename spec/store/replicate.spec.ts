import { expect } from 'chai';
import { request } from 'undici';
import { connect } from '../../src/store/couch.ts';
import { adminHeaders, couchUrl, dropPrefix, uniquePrefix } from '../support/couch.ts';

/** The store's origin without credentials, and its admin's Authorization header. */
function store(): { origin: string; admin: string } {
  return { origin: new URL(couchUrl()).origin, admin: adminHeaders().authorization };
}

async function replicate(body: unknown, auth?: string): Promise<{ status: number; body: any }> {
  const res = await request(`${store().origin}/_replicate`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) } });
  return { status: res.statusCode, body: await res.body.json() };
}

describe('POST /_replicate - one-shot replication, as CouchDB answers it', () => {
  const p = uniquePrefix();
  after(() => dropPrefix(p));

  it('copies the documents a selector or doc_ids pick, by URL, and a second run changes nothing', async () => {
    const nano = connect(couchUrl());
    await nano.db.create(`${p}src`);
    await nano.db.create(`${p}dst`);
    await nano.use(`${p}src`).bulk({ docs: [{ _id: 'a', kind: 'x' }, { _id: 'b', kind: 'y' }, { _id: 'c', kind: 'x' }] });
    const src = `${couchUrl()}/${p}src`;
    const dst = `${couchUrl()}/${p}dst`;
    const first = await replicate({ source: src, target: dst, selector: { kind: 'x' } }, store().admin);
    expect(first.status).to.equal(200);
    expect(first.body.ok).to.equal(true);
    expect((await nano.use(`${p}dst`).list()).rows.map((r) => r.id)).to.deep.equal(['a', 'c']);
    const byId = await replicate({ source: src, target: dst, doc_ids: ['b'] }, store().admin);
    expect(byId.body.ok).to.equal(true);
    expect((await nano.use(`${p}dst`).list()).rows.map((r) => r.id)).to.deep.equal(['a', 'b', 'c']);
    const before = await nano.use(`${p}dst`).get('b');
    const again = await replicate({ source: src, target: dst, doc_ids: ['b'] }, store().admin);
    expect(again.body.ok).to.equal(true);
    const after = await nano.use(`${p}dst`).get('b');
    expect(after._rev).to.equal(before._rev);
    expect((await nano.use(`${p}dst`).list()).rows.length).to.equal(3);
  });

  it('refuses an anonymous caller with 401, and a source that does not exist with 500 db_not_found (CouchDB 3\'s answer)', async () => {
    const anon = await replicate({ source: 'x', target: 'y' });
    expect(anon.status).to.equal(401);
    expect(anon.body.error).to.equal('unauthorized');
    const missing = await replicate({ source: `${couchUrl()}/${p}nothing`, target: `${couchUrl()}/${p}dst` }, store().admin);
    expect(missing.status).to.equal(500);
    expect(missing.body.error).to.equal('db_not_found');
    expect(missing.body.reason).to.contain(`${p}nothing`);
    expect(missing.body.reason).to.not.contain(new URL(couchUrl()).password || 'no password');
  });

  it('refuses a body that is not an object with 400, and one without a source with 500 (CouchDB 3\'s answers)', async () => {
    const notObject = await replicate([], store().admin);
    expect(notObject.status).to.equal(400);
    expect(notObject.body.error).to.equal('bad_request');
    const noSource = await replicate({ target: 'y' }, store().admin);
    expect(noSource.status).to.equal(500);
    expect(noSource.body.ok).to.equal(undefined);
  });
});
