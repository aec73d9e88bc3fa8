import { expect } from 'chai';
import { request as undiciRequest } from 'undici';
import { parseActivationQuery } from '../../src/server/activations.ts';
import { createLivelyServer, type LivelyServer } from '../../src/server/http.ts';
import type { EventFirer, HttpTriggerReply } from '../../src/server/firer.ts';
import type { ActivationPage, ActivationQuery } from '../../src/activations/reader.ts';
import { isLivelyError } from '../../src/shared/errors.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { createAuthorizer } from '../../src/core/auth.ts';
import { adminHeaders, couchUrl } from '../support/couch.ts';

/** The admin API needs an admin: every request here is made as the store's admin. */
const request = (url: string, opts: { method?: string; body?: string; headers?: Record<string, string> } = {}) =>
  undiciRequest(url, { ...opts, method: (opts.method ?? 'GET') as 'GET', headers: { ...opts.headers, ...adminHeaders() } });

const parse = (search: string) => parseActivationQuery(new URLSearchParams(search));

describe('the activation list query', () => {
  it('takes every filter; since as an ISO time or as ms; limit 20 unless given', () => {
    expect(parse('')).to.deep.equal({ limit: 20 });
    expect(parse('event=e&worker=w&status=dead&limit=5&before=abc&since=2026-01-31T12:00:00Z'))
      .to.deep.equal({ event: 'e', worker: 'w', status: 'dead', limit: 5, before: 'abc', since: Date.UTC(2026, 0, 31, 12) });
    expect(parse('since=1700000000000').since).to.equal(1_700_000_000_000);
    expect(parse('since=2026-01-31').since).to.equal(Date.UTC(2026, 0, 31));
    for (const s of ['ok', 'error', 'timeout', 'dead']) expect(parse(`status=${s}`).status).to.equal(s);
  });

  it('a bad value, an unknown or a repeated parameter is LC_BAD_REQUEST naming it', () => {
    for (const [search, name] of [['limit=-1', 'limit'], ['limit=1.5', 'limit'], ['since=2026-13-45', 'since'], ['since=12abc', 'since'], ['status=OK', 'status'], ['before=', 'before'], ['x=1', '"x"'], ['since=1&since=2', 'since']]) {
      let err: unknown;
      try { parse(search); } catch (e) { err = e; }
      expect(isLivelyError(err, 'LC_BAD_REQUEST'), search).to.equal(true);
      expect((err as Error).message, search).to.contain(name);
    }
  });
});

describe('the activation routes of the server', () => {
  const calls: unknown[] = [];
  const firer: EventFirer = {
    fireHttp: async () => { throw new Error('not used'); },
    health: async () => ({ ok: true, store: true }),
    status: async () => ({}),
    activations: async (q: ActivationQuery): Promise<ActivationPage> => { calls.push(q); return { activations: [], next: 'n1' }; },
    activation: async (id: string) => ({ activation: id }),
    rerun: async (id: string, wait: boolean): Promise<HttpTriggerReply> => {
      calls.push({ rerun: id, wait });
      return { activation: 'new', events: ['e'], workers: ['w'], ...(wait ? { outcomes: [{ worker: 'w', status: 'ok', logs: [], durationMs: 1 }] } : {}) };
    },
  };
  let server: LivelyServer;
  let bare: LivelyServer;
  let url = '';
  let bareUrl = '';

  before(async () => {
    const config = { host: '127.0.0.1', port: 0, bodyLimit: 1024 };
    server = createLivelyServer({ config, firer, couchUrl: 'http://127.0.0.1:9', logger: silentLogger, authorizeAdmin: createAuthorizer(couchUrl()).authorizeAdmin });
    url = `http://127.0.0.1:${(await server.listen()).port}`;
    const { activations: _a, activation: _b, rerun: _c, ...plain } = firer;
    bare = createLivelyServer({ config, firer: plain, couchUrl: 'http://127.0.0.1:9', logger: silentLogger, authorizeAdmin: createAuthorizer(couchUrl()).authorizeAdmin });
    bareUrl = `http://127.0.0.1:${(await bare.listen()).port}`;
  });
  after(async () => { await server.close(); await bare.close(); });

  it('GET /_lively/activations hands the parsed query to the firer and answers its page', async () => {
    const res = await request(`${url}/_lively/activations?event=e%2Fx&limit=3`);
    expect(res.statusCode).to.equal(200);
    expect(await res.body.json()).to.deep.equal({ activations: [], next: 'n1' });
    expect(calls.at(-1)).to.deep.equal({ event: 'e/x', limit: 3 });
  });

  it('POST …/<id>/rerun: the id is percent-decoded, a body is read and ignored, ?wait=true answers 200 with outcomes', async () => {
    const res = await request(`${url}/_lively/activations/a%2Db/rerun?wait=true`, { method: 'POST', body: '{"ignored":true}', headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).to.equal(200);
    const body = (await res.body.json()) as Record<string, unknown>;
    expect(body).to.deep.include({ ok: true, activation: 'new', events: ['e'], workers: ['w'] });
    expect(body.outcomes).to.have.length(1);
    expect(calls.at(-1)).to.deep.equal({ rerun: 'a-b', wait: true });
    const quick = await request(`${url}/_lively/activations/a-b/rerun`, { method: 'POST' });
    expect(quick.statusCode).to.equal(202);
    await quick.body.dump();
  });

  it('GET …/rerun is 405 with Allow: POST; a runtime without activation records answers 404 on all three routes', async () => {
    const res = await request(`${url}/_lively/activations/a-b/rerun`);
    expect(res.statusCode).to.equal(405);
    expect(res.headers.allow).to.equal('POST');
    await res.body.dump();
    for (const [path, method] of [['/_lively/activations', 'GET'], ['/_lively/activations/x', 'GET'], ['/_lively/activations/x/rerun', 'POST']] as const) {
      const r = await request(bareUrl + path, { method });
      expect(r.statusCode, path).to.equal(404);
      expect(((await r.body.json()) as { error: string }).error).to.equal('LC_NOT_FOUND');
    }
  });
});
