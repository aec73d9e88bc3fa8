/**
 * The embedded store answers as Apache CouchDB 3.5 does. Each case sends the same requests to
 * every store at hand and checks CouchDB's answer as written here (status, and the fields that
 * carry meaning: error, reason, ok, …). With COUCHDB_URL set, the suite's store is that CouchDB
 * and the spec starts an embedded store of its own beside it: the two must then also agree on
 * every status and on the shape of every body (the same keys, the same JSON types).
 *
 * Known differences (docs/stores.md): sequence ids are numbers on the embedded store and opaque
 * strings on CouchDB, its `_changes` has no `pending`, its `_find` no `bookmark`, and its
 * welcome names no git_sha.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { EmbeddedStore } from '../../src/store/embedded/supervisor.ts';
import { basicAuthOf } from '../../src/store/couch.ts';
import { couchUrl, dropPrefix, uniquePrefix } from '../support/couch.ts';
import { startRuntime } from '../support/runtime.ts';

interface Answer { status: number; body: unknown; headers: Record<string, string | string[] | undefined> }
interface Store { name: string; url: string; origin: string; auth: string }
type Send = (method: string, p: string, body?: unknown, headers?: Record<string, string>) => Promise<Answer>;

/** Keys whose values legitimately differ in type or presence between the stores. */
const kUnlike = new Set(['seq', 'last_seq', 'update_seq', 'pending', 'git_sha', 'features', 'vendor', 'ref', 'bookmark']);

/** A body's shape: the same keys and JSON types, values aside. */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(shape);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).filter(([k]) => !kUnlike.has(k)).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, shape(x)]));
  }
  return v === null ? 'null' : typeof v;
}

function storeOf(name: string, url: string): Store {
  const u = new URL(url);
  return { name, url, origin: `${u.origin}${u.pathname.replace(/\/+$/, '')}`, auth: basicAuthOf(u)! };
}

function sender(store: Store, db: string): Send {
  return async (method, p, body, headers = {}) => {
    const h: Record<string, string> = { authorization: store.auth, ...headers };
    let payload: string | Buffer | undefined;
    if (Buffer.isBuffer(body) || typeof body === 'string') payload = body;
    else if (body !== undefined) { payload = JSON.stringify(body); h['content-type'] ??= 'application/json'; }
    const res = await request(store.origin + p.replace('{db}', db), { method: method as 'GET', headers: h, body: payload });
    const text = await res.body.text();
    let parsed: unknown = text;
    try { parsed = JSON.parse(text); } catch {
      // a feed's lines, one JSON value each
      const lines = text.split('\n').filter((l) => l.trim() !== '');
      try { parsed = lines.map((l) => JSON.parse(l)); } catch { parsed = text; }
    }
    return { status: res.statusCode, body: parsed, headers: res.headers };
  };
}

/** One case: what it sends, and CouchDB's answers (status, and the fields given). */
interface Case { name: string; run: (send: Send) => Promise<Answer[]>; expect: Array<[number, Record<string, unknown>?]> }

const form = { 'content-type': 'application/x-www-form-urlencoded' };
/** Refuses a document with `show`, saying what it was given besides the document (the same on every store). */
const kShowContext = 'function (doc, old, userCtx, secObj) { if (doc.show) throw({ forbidden: JSON.stringify({ db: typeof userCtx.db, dbNamed: !!userCtx.db, admin: userCtx.roles.indexOf("_admin") !== -1, members: secObj.members || null }) }); }';
const kShownContext = JSON.stringify({ db: 'string', dbNamed: true, admin: true, members: { names: ['somebody'], roles: [] } });
const att = Buffer.from('hello, attachment');

const cases: Case[] = [
  { name: 'GET / is the welcome', run: async (s) => [await s('GET', '/')], expect: [[200, { couchdb: 'Welcome' }]] },
  {
    name: 'PUT of a document takes its JSON body whatever the content type (curl\'s form default, text, none)',
    run: async (s) => [
      await s('PUT', '/{db}/form', '{"text":"hello"}', form),
      await s('GET', '/{db}/form'),
      await s('PUT', '/{db}/plain', '{"text":"plain"}', { 'content-type': 'text/plain' }),
      await s('GET', '/{db}/plain'),
      await s('PUT', '/{db}/_design/formed', '{"views":{}}', form),
      await s('PUT', '/{db}/notjson', 'text=hello', form),
      await s('PUT', '/{db}/empty', '', form),
    ],
    expect: [[201, { ok: true, id: 'form' }], [200, { _id: 'form', text: 'hello' }], [201, { ok: true }], [200, { text: 'plain' }], [201, { ok: true }],
      [400, { error: 'bad_request', reason: 'invalid UTF-8 JSON' }], [400, { error: 'bad_request', reason: 'invalid UTF-8 JSON' }]],
  },
  {
    name: 'POSTs that read JSON refuse another content type with 415',
    run: async (s) => [
      await s('POST', '/{db}', '{"text":"x"}', form),
      await s('POST', '/{db}/_bulk_docs', '{"docs":[]}', form),
      await s('POST', '/{db}/_all_docs', '{"keys":[]}', form),
      await s('POST', '/{db}/_find', '{"selector":{}}', form),
    ],
    expect: Array(4).fill([415, { error: 'bad_content_type', reason: 'Content-Type must be application/json' }]),
  },
  {
    name: 'documents: create, read, conflict, update, delete, and their errors',
    run: async (s) => {
      const a = await s('PUT', '/{db}/doc', { n: 1 });
      const rev = (a.body as { rev: string }).rev;
      return [a, await s('GET', '/{db}/doc'), await s('PUT', '/{db}/doc', { n: 2 }), await s('PUT', '/{db}/doc', { n: 2, _rev: rev }),
        await s('GET', '/{db}/nope'), await s('GET', '/{db}/doc?rev=garbage'), await s('GET', '/{db}/doc?open_revs=garbage'),
        await s('GET', '/{db}/doc?open_revs=5'), await s('PUT', '/{db}/_nope', {}), await s('PUT', '/{db}/list', [1]),
        await s('POST', '/{db}', { _id: 'posted', n: 3 }), await s('DELETE', '/{db}/posted'), await s('GET', '/missing_db_x/doc')];
    },
    expect: [[201, { ok: true, id: 'doc' }], [200, { _id: 'doc', n: 1 }], [409, { error: 'conflict', reason: 'Document update conflict.' }], [201, { ok: true }],
      [404, { error: 'not_found', reason: 'missing' }], [400, { error: 'bad_request', reason: 'Invalid rev format' }], [400, { error: 'bad_request', reason: 'invalid UTF-8 JSON' }],
      [400, { error: 'bad_request', reason: 'Invalid list of revisions' }], [400, { error: 'illegal_docid', reason: 'Only reserved document ids may start with underscore.' }],
      [400, { error: 'bad_request', reason: 'Document must be a JSON object' }], [201, { ok: true, id: 'posted' }], [409, { error: 'conflict' }],
      [404, { error: 'not_found', reason: 'Database does not exist.' }]],
  },
  {
    name: 'attachments: put, read back, stub in the document',
    run: async (s) => {
      const a = await s('PUT', '/{db}/withatt/note.txt', att, { 'content-type': 'text/plain' });
      const got = await s('GET', '/{db}/withatt/note.txt');
      const doc = await s('GET', '/{db}/withatt');
      const stub = (doc.body as { _attachments: { 'note.txt': { stub: boolean; content_type: string; length: number } } })._attachments['note.txt'];
      return [a, { ...got, body: { text: got.body } }, { ...doc, body: { stub } }, await s('GET', '/{db}/withatt/other.txt')];
    },
    expect: [[201, { ok: true, id: 'withatt' }], [200, { text: 'hello, attachment' }], [200, { stub: { stub: true, content_type: 'text/plain', length: att.length, digest: undefined, revpos: 1 } }],
      [404, { error: 'not_found' }]],
  },
  {
    name: 'a validate_doc_update gets the database in its user context and the _security object, on _bulk_docs as on a PUT',
    run: async (s) => [
      await s('PUT', '/{db}/_security', { admins: { names: [], roles: [] }, members: { names: ['somebody'], roles: [] } }),
      await s('PUT', '/{db}/_design/shows', { validate_doc_update: kShowContext }),
      await s('POST', '/{db}/_bulk_docs', { docs: [{ _id: 'shown', show: true }, { _id: 'kept' }] }),
      await s('PUT', '/{db}/put-shown', { show: true }),
      await s('POST', '/{db}/_bulk_docs', { docs: [{ _id: 'alone', show: true }] }),
    ],
    expect: [[200, { ok: true }], [201, { ok: true }],
      [201, { 0: { id: 'shown', error: 'forbidden', reason: kShownContext }, 1: { id: 'kept', ok: true } }],
      [403, { error: 'forbidden', reason: kShownContext }],
      [201, { 0: { id: 'alone', error: 'forbidden', reason: kShownContext } }]],
  },
  {
    name: '_bulk_docs, _all_docs and _bulk_get',
    run: async (s) => [
      await s('POST', '/{db}/_bulk_docs', { docs: [{ _id: 'b1', n: 1 }, { _id: 'b2', n: 2 }] }),
      await s('POST', '/{db}/_bulk_docs', {}),
      await s('POST', '/{db}/_bulk_docs', { docs: [1] }),
      await s('POST', '/{db}/_all_docs?include_docs=true', { keys: ['b1', 'zz'] }),
      await s('GET', '/{db}/_all_docs?limit=x'),
      await s('GET', '/{db}/_all_docs?startkey=abc'),
      await s('POST', '/{db}/_bulk_get', { docs: [{ id: 'b1' }, { id: 'zz' }] }),
      await s('POST', '/{db}/_bulk_get', { docs: [] }),
      await s('POST', '/{db}/_bulk_get', { docs: 5 }),
      await s('POST', '/{db}/_bulk_get', {}),
    ],
    expect: [[201], [400, { error: 'bad_request', reason: 'POST body must include `docs` parameter.' }], [400, { error: 'bad_request', reason: 'Document must be a JSON object' }],
      [200], [400, { error: 'query_parse_error', reason: 'Invalid value for integer: "x"' }], [400, { error: 'bad_request', reason: 'invalid UTF-8 JSON' }],
      [200], [200, { results: [] }], [500, { error: 'unknown_error', reason: 'function_clause' }], [400, { error: 'bad_request', reason: "Missing JSON list of 'docs'." }]],
  },
  {
    name: '_changes in every feed mode',
    run: async (s) => {
      await s('PUT', '/{db}/c1', { n: 1 });
      return [
        await s('GET', '/{db}/_changes?since=0&limit=1'),
        await s('GET', '/{db}/_changes?feed=longpoll&since=0&limit=1'),
        await s('GET', '/{db}/_changes?feed=continuous&since=0&limit=1'),
        await s('GET', '/{db}/_changes?feed=longpoll&since=now&timeout=200'),
        await s('GET', '/{db}/_changes?feed=continuous&since=now&timeout=200'),
        await s('GET', '/{db}/_changes?feed=longpoll&heartbeat=abc'),
        await s('POST', '/{db}/_changes?filter=_selector&since=0', { selector: { n: 1 } }),
      ];
    },
    expect: [[200], [200], [200], [200, { results: [] }], [200], [400, { error: 'bad_request' }], [200]],
  },
  {
    name: '_find, indexes and views',
    run: async (s) => {
      await s('POST', '/{db}/_bulk_docs', { docs: [{ _id: 'f1', kind: 'a', n: 1 }, { _id: 'f2', kind: 'b', n: 2 }] });
      return [
        await s('POST', '/{db}/_find', { selector: { kind: 'a' }, fields: ['_id', 'n'] }),
        await s('POST', '/{db}/_find', {}),
        await s('POST', '/{db}/_index', { index: { fields: ['kind'] }, name: 'by-kind', ddoc: 'idx' }),
        await s('PUT', '/{db}/_design/v', { views: { byN: { map: 'function (doc) { if (doc.n) emit(doc.n, null); }' } } }),
        await s('GET', '/{db}/_design/v/_view/byN?key=2'),
        await s('GET', '/{db}/_design/v/_view/nope'),
        await s('GET', '/{db}/_design/nope/_view/v'),
      ];
    },
    expect: [[200, { docs: [{ _id: 'f1', n: 1 }] }], [400], [200, { result: 'created', id: '_design/idx', name: 'by-kind' }], [201, { ok: true }],
      [200, { rows: [{ id: 'f2', key: 2, value: null }] }], [404, { error: 'not_found' }], [404, { error: 'not_found', reason: 'missing' }]],
  },
  {
    name: '_security and _session',
    run: async (s) => [
      await s('PUT', '/{db}/_security', { admins: { names: [], roles: [] }, members: { names: [], roles: ['team'] } }),
      await s('GET', '/{db}/_security'),
      await s('PUT', '/{db}/_security', { admins: { names: [], roles: [] }, members: { names: [], roles: [] } }),
      await s('GET', '/_session'),
      await s('POST', '/_session', { name: 'nobody_conformance', password: 'x' }),
      await s('GET', '/_session', undefined, { authorization: '' }),
    ],
    expect: [[200, { ok: true }], [200, { members: { names: [], roles: ['team'] } }], [200, { ok: true }], [200, { ok: true }],
      [401, { error: 'unauthorized', reason: 'Name or password is incorrect.' }], [200, { ok: true, userCtx: { name: null, roles: [] } }]],
  },
  {
    // Two runtimes starting on one store write each database's _security at the same moment.
    name: '_security written by many at once: every write succeeds (none is a conflict), and one of them is what is read',
    run: async (s) => {
      const roles = Array.from({ length: 12 }, (_, k) => `role${k}`);
      const puts = await Promise.all(roles.map((r) => s('PUT', '/{db}/_security', { admins: { names: [], roles: ['_admin'] }, members: { names: [], roles: [r] } })));
      const got = await s('GET', '/{db}/_security');
      const read = (got.body as { members?: { roles?: string[] } }).members?.roles ?? [];
      return [...puts, { ...got, body: { oneOfTheWrites: read.length === 1 && roles.includes(read[0]!) } }];
    },
    expect: [...Array(12).fill([200, { ok: true }]), [200, { oneOfTheWrites: true }]],
  },
];

/** `expected` holds for `actual`: every field given is there, equal (objects compared field by field, arrays item by item). */
function holds(actual: unknown, expected: unknown, where: string): string[] {
  if (expected === undefined) return [];
  if (expected !== null && typeof expected === 'object') {
    if (actual === null || typeof actual !== 'object') return [`${where}: ${JSON.stringify(actual)} is not like ${JSON.stringify(expected)}`];
    return Object.entries(expected).flatMap(([k, v]) => holds((actual as Record<string, unknown>)[k], v, `${where}.${k}`));
  }
  return actual === expected ? [] : [`${where}: ${JSON.stringify(actual)}, not ${JSON.stringify(expected)}`];
}

describe('conformance: the embedded store answers as Apache CouchDB 3.5 does', function () {
  this.timeout(60_000);
  const prefix = uniquePrefix();
  const stores: Store[] = [];
  let own: EmbeddedStore | undefined;
  let ownDir: string | undefined;

  before(async () => {
    stores.push(storeOf(process.env.COUCHDB_URL ? 'couchdb' : 'embedded', couchUrl()));
    if (process.env.COUCHDB_URL) {
      ownDir = mkdtempSync(path.join(os.tmpdir(), 'lively-conformance-'));
      own = new EmbeddedStore({ dataDir: ownDir, memory: true });
      await own.start();
      stores.push(storeOf('embedded', own.url));
    }
  });
  after(async () => {
    await dropPrefix(prefix);
    await own?.stop();
    if (ownDir) rmSync(ownDir, { recursive: true, force: true });
  });

  for (const [i, c] of cases.entries()) {
    it(c.name, async () => {
      const answers: Answer[][] = [];
      for (const store of stores) {
        const db = `${prefix}c${i}`;
        const admin = sender(store, db);
        expect((await admin('PUT', '/{db}')).status).to.equal(201);
        const got = await c.run(admin);
        answers.push(got);
        await admin('DELETE', '/{db}');
        expect(got.length, `${store.name}: answers`).to.equal(c.expect.length);
        const wrong = got.flatMap((a, j) => [
          ...(a.status === c.expect[j]![0] ? [] : [`#${j} status ${a.status}, not ${c.expect[j]![0]}: ${JSON.stringify(a.body).slice(0, 300)}`]),
          ...holds(a.body, c.expect[j]![1], `#${j}`),
        ]);
        expect(wrong, `${store.name}:\n${wrong.join('\n')}`).to.deep.equal([]);
        for (const a of got) expect(a.headers['x-powered-by'], `${store.name}: X-Powered-By`).to.equal(undefined);
      }
      if (answers.length === 2) {
        for (let j = 0; j < answers[0]!.length; j++) {
          expect(answers[1]![j]!.status, `#${j} status, embedded vs CouchDB`).to.equal(answers[0]![j]!.status);
          expect(shape(answers[1]![j]!.body), `#${j} shape, embedded vs CouchDB`).to.deep.equal(shape(answers[0]![j]!.body));
        }
      }
    });
  }

  it('a document PUT with curl\'s default content type keeps its fields through the runtime\'s proxy too', async () => {
    const rt = await startRuntime();
    try {
      const db = `${rt.config.dbPrefix}notes`;
      const auth = { authorization: basicAuthOf(couchUrl())! };
      expect((await request(`${rt.url}/${db}`, { method: 'PUT', headers: auth })).statusCode).to.equal(201);
      const put = await request(`${rt.url}/${db}/g`, { method: 'PUT', headers: { ...auth, ...form }, body: '{"text":"hello"}' });
      await put.body.dump();
      expect(put.statusCode).to.equal(201);
      const post = await request(`${rt.url}/${db}`, { method: 'POST', headers: { ...auth, ...form }, body: '{"text":"posted"}' });
      expect(post.statusCode, 'POST /db wants JSON, as CouchDB does').to.equal(415);
      await post.body.dump();
      const got = await request(`${rt.url}/${db}/g`, { headers: auth });
      expect(await got.body.json()).to.deep.include({ _id: 'g', text: 'hello' });
    } finally {
      await rt.stop();
      await dropPrefix(rt.config.dbPrefix);
    }
  });
});
