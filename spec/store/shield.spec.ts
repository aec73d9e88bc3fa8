/**
 * The requests that crash an unshielded express-pouchdb, through nano against the suite's
 * store (embedded, or Apache CouchDB when COUCHDB_URL is set: the same answers are expected).
 */
import { expect } from 'chai';
import { request } from 'undici';
import { connect } from '../../src/store/couch.ts';
import { couchUrl, dropPrefix, embeddedStoreAlive, embeddedStorePid, uniquePrefix } from '../support/couch.ts';

function plainUrl(): { origin: string; auth: string } {
  const u = new URL(couchUrl());
  const auth = 'Basic ' + Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
  return { origin: u.origin, auth };
}

describe('store shield', () => {
  const prefix = uniquePrefix();
  const dbName = `${prefix}shield`;
  const server = connect(couchUrl());
  const db = server.use<Record<string, unknown>>(dbName);

  before(async () => { await server.db.create(dbName); });
  after(() => dropPrefix(prefix));
  afterEach(() => {
    // none of these requests may have cost the embedded store its process
    if (embeddedStorePid() !== undefined) expect(embeddedStoreAlive()).to.equal(true);
  });

  it('GET /db/_changes?feed=longpoll on a database deleted while the poll waits - the poll ends and the database stays deleted', async () => {
    const name = `${prefix}goner`;
    await server.db.create(name);
    const { origin, auth } = plainUrl();
    const poll = request(`${origin}/${name}/_changes?feed=longpoll&since=now&timeout=500`, { headers: { authorization: auth } })
      .then(async (res) => { await res.body.text().catch(() => ''); return 'ended'; }, () => 'ended');
    await new Promise((r) => setTimeout(r, 100));
    await server.db.destroy(name);
    expect(await poll).to.equal('ended');
    const again = await request(`${origin}/${name}`, { headers: { authorization: auth } });
    await again.body.text();
    expect(again.statusCode).to.equal(404);
    expect(await server.db.list()).to.not.include(name);
  });

  it('DELETE /db while other requests keep reading it - the database stays deleted (no request brings it back, empty)', async () => {
    const { origin, auth } = plainUrl();
    for (let round = 0; round < 5; round++) {
      const name = `${prefix}busy${round}`;
      await server.db.create(name);
      let reading = true;
      const readers = Array.from({ length: 4 }, async () => {
        while (reading) {
          const res = await request(`${origin}/${name}/_changes?since=0`, { headers: { authorization: auth } }).catch(() => undefined);
          await res?.body.text().catch(() => '');
        }
      });
      await new Promise((r) => setTimeout(r, 30));
      await server.db.destroy(name);
      await new Promise((r) => setTimeout(r, 300));
      reading = false;
      await Promise.all(readers);
      expect(await server.db.list(), `round ${round}`).to.not.include(name);
    }
  });

  it('PUT /db/doc multipart/related - db.multipart.insert with two attachments reads back byte-equal', async () => {
    const binary = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 37) % 256));
    const script = Buffer.from('module.exports = () => "--boundary-lookalike\\r\\n";\n');
    const res = await db.multipart.insert({ type: 'node', delegate: 'main.js' }, [
      { name: 'main.js', data: script, content_type: 'application/javascript' },
      { name: 'blob.bin', data: binary, content_type: 'application/octet-stream' },
    ], 'worker1');
    expect(res.ok).to.equal(true);
    const doc = await db.get('worker1') as Record<string, unknown> & { _attachments: Record<string, { content_type: string; length: number }> };
    expect(doc.delegate).to.equal('main.js');
    expect(Object.keys(doc._attachments).sort()).to.deep.equal(['blob.bin', 'main.js']);
    expect(doc._attachments['main.js']!.content_type).to.equal('application/javascript');
    expect((await db.attachment.get('worker1', 'main.js')).equals(script)).to.equal(true);
    expect((await db.attachment.get('worker1', 'blob.bin')).equals(binary)).to.equal(true);
  });

  it('PUT /db/doc multipart/related - a second revision with ?rev replaces the attachments', async () => {
    const first = await db.multipart.insert({ v: 1 }, [{ name: 'a.txt', data: Buffer.from('one'), content_type: 'text/plain' }], 'worker2');
    const second = await db.multipart.insert({ v: 2, _rev: first.rev }, [{ name: 'a.txt', data: Buffer.from('two'), content_type: 'text/plain' }], 'worker2');
    expect(second.rev).to.match(/^2-/);
    expect((await db.attachment.get('worker2', 'a.txt')).toString()).to.equal('two');
  });

  it('PUT /db/doc multipart/related - a body missing an announced attachment is a 400, not a crash', async () => {
    const { origin, auth } = plainUrl();
    const body = '--xyz\r\ncontent-type: application/json\r\n\r\n{"_attachments":{"a.txt":{"follows":true,"content_type":"text/plain","length":3}}}\r\n--xyz--\r\n';
    const res = await request(`${origin}/${dbName}/broken`, {
      method: 'PUT', body, headers: { authorization: auth, 'content-type': 'multipart/related; boundary=xyz' },
    });
    expect(res.statusCode).to.equal(400);
    expect(await res.body.json()).to.have.property('error');
  });

  it('POST /db/_changes?filter=_selector - db.changes with a selector returns only matching changes', async () => {
    await db.bulk({ docs: [{ _id: 'r1', color: 'red' }, { _id: 'b1', color: 'blue' }, { _id: 'r2', color: 'red' }] });
    const res = await server.request({
      db: dbName, path: '_changes', method: 'POST', qs: { filter: '_selector', include_docs: true }, body: { selector: { color: 'red' } },
    }) as { results: Array<{ id: string; doc: { color: string } }>; last_seq: unknown };
    expect(res.results.map((r) => r.id).sort()).to.deep.equal(['r1', 'r2']);
    expect(res.results.every((r) => r.doc.color === 'red')).to.equal(true);
    expect(res.last_seq).to.not.equal(undefined);
  });

  it('POST /db/_changes?filter=_selector&feed=longpoll - waits for the next matching change', async () => {
    const now = await server.request({ db: dbName, path: '_changes', qs: { since: 'now', limit: 1 } }) as { last_seq: unknown };
    const pending = server.request({
      db: dbName, path: '_changes', method: 'POST',
      qs: { filter: '_selector', feed: 'longpoll', since: String(now.last_seq), timeout: 10000 },
      body: { selector: { color: 'green' } },
    }) as Promise<{ results: Array<{ id: string }> }>;
    await db.insert({ _id: 'x1', color: 'blue' });
    await db.insert({ _id: 'g1', color: 'green' });
    const res = await pending;
    expect(res.results.map((r) => r.id)).to.deep.equal(['g1']);
  });

  it('GET /db/_changes?filter=_selector - without a selector is a 400 JSON error', async () => {
    const { origin, auth } = plainUrl();
    const res = await request(`${origin}/${dbName}/_changes?filter=_selector`, { headers: { authorization: auth } });
    expect(res.statusCode).to.equal(400);
    expect(res.headers['content-type']).to.match(/application\/json/);
    expect(await res.body.json()).to.have.property('error');
  });

  describe('filtered _changes that PouchDB would end the store on', () => {
    const get = async (query: string) => {
      const { origin, auth } = plainUrl();
      const res = await request(`${origin}/${dbName}/_changes?${query}`, { headers: { authorization: auth } });
      return { status: res.statusCode, type: String(res.headers['content-type']), body: (await res.body.json()) as { error?: string; results?: Array<{ id: string }> } };
    };
    /** The store refused with a JSON error, and still answers a good filter after it. */
    async function refusedThenWorks(query: string, statuses: number[]) {
      const out = await get(query);
      expect(statuses, JSON.stringify(out)).to.include(out.status);
      expect(out.type).to.match(/application\/json/);
      expect(out.body.error).to.be.a('string');
      const ok = await get('filter=shield_filters/only_crimson');
      expect(ok.status).to.equal(200);
      expect(ok.body.results!.map((r) => r.id)).to.deep.equal(['crimson_one']);
    }

    before(async () => {
      await db.insert({ color: 'crimson' }, 'crimson_one');
      await server.request({ db: dbName, method: 'PUT', path: '_design/shield_filters', body: {
        filters: { only_crimson: 'function (doc) { return doc.color === "crimson"; }', broken: 'function (doc) { return doc.color === ; }', not_a_function: 'nothing_here' },
      } });
    });

    it('a filter whose design document or function does not exist is 404', async () => {
      await refusedThenWorks('filter=no_such_ddoc/x', [404]);
      await refusedThenWorks('filter=shield_filters/no_such_filter', [404]);
    });

    it('a filter function that does not compile, or does not evaluate to a function, is an error', async () => {
      // CouchDB compiles it in its query server when the feed runs; the store did in a callback where the error was uncaught.
      await refusedThenWorks('filter=shield_filters/broken', [400, 500]);
      await refusedThenWorks('filter=shield_filters/not_a_function', [400, 404, 500]);
    });

    it('a filter not of the form ddoc/name, and _view without its view, are errors', async () => {
      await refusedThenWorks('filter=a/b/c', [400, 404]);
      await refusedThenWorks('filter=_view', [400]);
      await refusedThenWorks('filter=_view&view=no_such_ddoc/v', [404]);
    });

    it('a view whose map function does not compile is refused, when written (CouchDB) or when used as a filter (the store)', async () => {
      let written = true;
      try {
        await server.request({ db: dbName, method: 'PUT', path: '_design/shield_views', body: { views: { broken: { map: 'function (doc) { emit( }' } } } });
      } catch (err) {
        expect((err as { statusCode?: number }).statusCode).to.equal(400);
        written = false;
      }
      if (written) await refusedThenWorks('filter=_view&view=shield_views/broken', [400, 500]);
    });
  });

  it('GET /db/_changes?feed=longpoll&timeout=200 - an idle longpoll ends with no results and a last_seq', async () => {
    const res = await server.request({ db: dbName, path: '_changes', qs: { feed: 'longpoll', since: 'now', timeout: 200 } }) as { results: unknown[]; last_seq: unknown };
    expect(res.results).to.deep.equal([]);
    expect(res.last_seq).to.not.equal(undefined);
  });

  for (const [title, path, init] of [
    ['GET /db/%E0%A4%A - bad percent-encoding', `/%db%/%E0%A4%A`, { method: 'GET' }],
    ['PUT /db/doc - invalid JSON body', `/%db%/doc`, { method: 'PUT', body: '{"a":', headers: { 'content-type': 'application/json' } }],
    ['POST /db/_bulk_docs - invalid JSON body', `/%db%/_bulk_docs`, { method: 'POST', body: '[[[', headers: { 'content-type': 'application/json' } }],
  ] as const) {
    it(`${title} gets a JSON error, not HTML`, async () => {
      const { origin, auth } = plainUrl();
      const init2 = init as { method: 'GET' | 'PUT' | 'POST'; body?: string; headers?: Record<string, string> };
      const res = await request(origin + path.replace('%db%', dbName), { ...init2, headers: { ...init2.headers, authorization: auth } });
      expect(res.statusCode).to.be.within(400, 499);
      expect(res.headers['content-type']).to.match(/application\/json/);
      expect(await res.body.json()).to.have.property('error');
    });
  }

  it('PUT /db - creating a database without admin credentials is 401', async () => {
    const { origin } = plainUrl();
    const res = await request(`${origin}/${prefix}anon`, { method: 'PUT' });
    expect(res.statusCode).to.equal(401);
    expect(await res.body.json()).to.have.property('error', 'unauthorized');
  });

  it('DELETE /_session - signing out of a cookie session ends it, for any user (it deletes no database)', async () => {
    const { origin } = plainUrl();
    const u = new URL(couchUrl());
    const login = await request(`${origin}/_session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: decodeURIComponent(u.username), password: decodeURIComponent(u.password) }) });
    await login.body.dump();
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    expect(cookie).to.match(/^AuthSession=./);
    const out = await request(`${origin}/_session`, { method: 'DELETE', headers: { cookie } });
    expect(out.statusCode).to.equal(200);
    expect(await out.body.json()).to.deep.equal({ ok: true });
    // the last cookie set is the one a browser keeps (the embedded store refreshes it first)
    expect([out.headers['set-cookie']].flat().at(-1)).to.match(/^AuthSession=;/);
  });

  it('PUT /db/_design/x - a design document without admin credentials is refused', async () => {
    const { origin } = plainUrl();
    const res = await request(`${origin}/${dbName}/_design/x`, { method: 'PUT', body: '{}', headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).to.be.oneOf([401, 403]);
    await res.body.dump();
  });

  it('PUT /db - a name CouchDB would not create (capitals, a leading digit) is 400 illegal_database_name and creates nothing; its allowed characters do', async () => {
    const { origin, auth } = plainUrl();
    for (const bad of [`${prefix}Upper`, `9${prefix}`]) {
      const res = await request(`${origin}/${encodeURIComponent(bad)}`, { method: 'PUT', headers: { authorization: auth } });
      expect(res.statusCode, bad).to.equal(400);
      expect(await res.body.json()).to.have.property('error', 'illegal_database_name');
      const after = await request(`${origin}/${encodeURIComponent(bad)}`, { headers: { authorization: auth } });
      await after.body.dump();
      expect(after.statusCode, bad).to.equal(404);
    }
    const odd = `${prefix}a$(b)+c-d/e`;
    const res = await request(`${origin}/${encodeURIComponent(odd)}`, { method: 'PUT', headers: { authorization: auth } });
    await res.body.dump();
    expect(res.statusCode).to.equal(201);
    const del = await request(`${origin}/${encodeURIComponent(odd)}`, { method: 'DELETE', headers: { authorization: auth } });
    await del.body.dump();
    expect(del.statusCode).to.equal(200);
  });

  // Apache CouchDB 3 refuses a document over its default max_document_size (8,000,000 bytes);
  // the embedded store does the same, so that what works here does not fail against CouchDB.
  it('PUT /db/doc - a document over 8,000,000 bytes is 413 document_too_large and is not stored; one just under is stored', async () => {
    const { origin, auth } = plainUrl();
    const put = (id: string, chars: number) => request(`${origin}/${dbName}/${id}`, {
      method: 'PUT', body: JSON.stringify({ text: 'x'.repeat(chars) }), headers: { authorization: auth, 'content-type': 'application/json' },
    });
    const big = await put('big', 8_100_000);
    expect(big.statusCode).to.equal(413);
    expect(await big.body.json()).to.have.property('error', 'document_too_large');
    const gone = await request(`${origin}/${dbName}/big`, { headers: { authorization: auth } });
    await gone.body.dump();
    expect(gone.statusCode).to.equal(404);
    const small = await put('small', 7_000_000);
    await small.body.dump();
    expect(small.statusCode).to.equal(201);
    expect(((await db.get('small')) as unknown as { text: string }).text).to.have.length(7_000_000);
  });

  it('POST /db/_bulk_docs - a document over 8,000,000 bytes is refused with 413', async () => {
    const { origin, auth } = plainUrl();
    const res = await request(`${origin}/${dbName}/_bulk_docs`, {
      method: 'POST', body: JSON.stringify({ docs: [{ _id: 'bulk-big', text: 'x'.repeat(8_100_000) }] }), headers: { authorization: auth, 'content-type': 'application/json' },
    });
    expect(res.statusCode).to.equal(413);
    await res.body.dump();
    const gone = await request(`${origin}/${dbName}/bulk-big`, { headers: { authorization: auth } });
    await gone.body.dump();
    expect(gone.statusCode).to.equal(404);
  });

  it('POST /db/_bulk_docs - docs that is not an array, or holds something other than an object, is a 400 and writes nothing', async () => {
    const { origin, auth } = plainUrl();
    const bulk = async (body: string) => {
      const res = await request(`${origin}/${dbName}/_bulk_docs`, { method: 'POST', body, headers: { authorization: auth, 'content-type': 'application/json' } });
      return { status: res.statusCode, body: (await res.body.json()) as { error?: string; reason?: string } };
    };
    const notArray = await bulk('{"docs":5}');
    expect(notArray.status).to.equal(400);
    expect(notArray.body).to.deep.equal({ error: 'bad_request', reason: '`docs` parameter must be an array.' });
    for (const docs of ['[{"_id":"bulk-mixed"},7]', '[null]', '["text"]', '[[{"_id":"bulk-nested"}]]']) {
      const res = await bulk(`{"docs":${docs}}`);
      expect(res.status, docs).to.equal(400);
      expect(res.body, docs).to.deep.equal({ error: 'bad_request', reason: 'Document must be a JSON object' });
    }
    const gone = await request(`${origin}/${dbName}/bulk-mixed`, { headers: { authorization: auth } });
    await gone.body.dump();
    expect(gone.statusCode).to.equal(404);
  });

  describe('continuous _changes', () => {
    const name = `${prefix}feeds`;
    const feeds = server.use<Record<string, unknown>>(name);
    before(async () => { await server.db.create(name); await feeds.insert({ _id: 'first' }); });

    /**
     * The embedded store's count of live feeds it holds open and of writes made to feeds whose
     * client had gone; undefined against CouchDB, which keeps no such counts.
     */
    async function feedStats(): Promise<{ live_feeds: number; late_writes: number } | undefined> {
      if (embeddedStorePid() === undefined) return undefined;
      const { origin, auth } = plainUrl();
      const res = await request(`${origin}/_lively_store/stats`, { headers: { authorization: auth } });
      expect(res.statusCode).to.equal(200);
      return (await res.body.json()) as { live_feeds: number; late_writes: number };
    }

    it('a heartbeat CouchDB refuses (zero, negative, not an integer) is its 400, whatever the feed', async () => {
      const { origin, auth } = plainUrl();
      const positive = 'The heartbeat value should be a positive integer (in milliseconds).';
      const invalid = 'Invalid heartbeat value. Expecting a positive integer value (in milliseconds).';
      for (const [feed, value, reason] of [['continuous', '0', positive], ['continuous', '-1000', positive], ['continuous', 'a1000', invalid], ['longpoll', '1.5', invalid], ['normal', 'soon', invalid]]) {
        const res = await request(`${origin}/${name}/_changes?feed=${feed}&heartbeat=${value}`, { headers: { authorization: auth } });
        expect(res.statusCode, `${feed} heartbeat=${value}`).to.equal(400);
        expect(await res.body.json()).to.deep.equal({ error: 'bad_request', reason });
      }
    });

    it('without a heartbeat, a feed ends after its timeout with a last_seq line', async () => {
      const { origin, auth } = plainUrl();
      const res = await request(`${origin}/${name}/_changes?feed=continuous&timeout=300`, { headers: { authorization: auth } });
      expect(res.statusCode).to.equal(200);
      const lines = (await res.body.text()).split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines[0]).to.have.property('id', 'first');
      expect(lines.at(-1)).to.have.property('last_seq');
      expect(lines.at(-1)).to.have.property('pending', 0);
    });

    it('limit ends a continuous feed after that many changes, with a last_seq line saying what is pending', async () => {
      const { origin, auth } = plainUrl();
      await feeds.insert({ _id: 'second' });
      const res = await request(`${origin}/${name}/_changes?feed=continuous&limit=1&heartbeat=5000`, { headers: { authorization: auth } });
      expect(res.statusCode).to.equal(200);
      const lines = (await res.body.text()).split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines).to.have.length(2);
      expect(lines[0]).to.have.property('id', 'first');
      expect(lines[1]).to.have.property('last_seq');
      expect(lines[1]!.pending).to.be.a('number').and.at.least(1);
    });

    it('feed=eventsource is server-sent events: a data and an id per change, event: heartbeat for a heartbeat', async () => {
      const { origin, auth } = plainUrl();
      const before = await feedStats();
      const res = await request(`${origin}/${name}/_changes?feed=eventsource&heartbeat=50`, { headers: { authorization: auth } });
      expect(res.statusCode).to.equal(200);
      expect(String(res.headers['content-type'])).to.match(/^text\/event-stream/);
      let text = '';
      for await (const chunk of res.body) {
        text += String(chunk);
        if (text.includes('event: heartbeat')) break;
      }
      const events = text.split('\n\n').filter((e) => e.trim() !== '');
      const change = events.find((e) => e.includes('"first"'))!;
      expect(change, text).to.be.a('string');
      const data = /^data: (.*)$/m.exec(change)![1]!;
      expect(JSON.parse(data)).to.have.property('id', 'first');
      expect(change).to.match(/^id: \S+$/m);
      expect(events).to.deep.include('event: heartbeat\ndata: ');
      if (before !== undefined) {
        const deadline = Date.now() + 10_000;
        while ((await feedStats())!.live_feeds !== before.live_feeds && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        expect((await feedStats())!.live_feeds, 'the event stream is released when its client goes').to.equal(before.live_feeds);
      }
    });

    it('a continuous feed or a longpoll its client closes is released (its heartbeat and its reading of the database stop), and feeds opened after it work', async () => {
      const { origin, auth } = plainUrl();
      const before = await feedStats();
      for (let i = 0; i < 10; i++) {
        const res = await request(`${origin}/${name}/_changes?feed=continuous&heartbeat=50`, { headers: { authorization: auth } });
        expect(res.statusCode).to.equal(200);
        // the first change arrives, then the client goes
        for await (const chunk of res.body) { expect(String(chunk)).to.include('first'); break; }
      }
      for (let i = 0; i < 10; i++) {
        const res = await request(`${origin}/${name}/_changes?feed=longpoll&since=now&heartbeat=50`, { headers: { authorization: auth } });
        expect(res.statusCode).to.equal(200);
        // the poll has begun to wait (its first bytes are out), then the client goes
        for await (const chunk of res.body) { expect(chunk.length).to.be.greaterThan(0); break; }
      }
      if (before !== undefined) {
        const deadline = Date.now() + 10_000;
        let now = (await feedStats())!;
        while (now.live_feeds !== before.live_feeds && Date.now() < deadline) { await new Promise((r) => setTimeout(r, 50)); now = (await feedStats())!; }
        expect(now.live_feeds, 'feeds still open after their clients went').to.equal(before.live_feeds);
        // with a 50 ms heartbeat, twenty feeds left running would write about 120 times in 300 ms
        await new Promise((r) => setTimeout(r, 300));
        expect((await feedStats())!.late_writes, 'heartbeats written for clients that went').to.equal(now.late_writes);
      }
      const next = request(`${origin}/${name}/_changes?feed=continuous&since=now&timeout=2000`, { headers: { authorization: auth } })
        .then(async (res) => res.body.text());
      await new Promise((r) => setTimeout(r, 200));
      await feeds.insert({ _id: 'later' });
      expect(await next).to.include('"later"');
    });
  });
});
