import { expect } from 'chai';
import { EventMatcher } from '../../src/events/matcher.ts';
import { parseEventDoc } from '../../src/events/parse.ts';
import type { EventDef, MatchResult } from '../../src/events/model.ts';
import { seedEvent } from './corpus.ts';

function event(doc: Record<string, unknown>): EventDef {
  const r = parseEventDoc({ workers: { w: {} }, ...doc });
  if (!r.ok) throw new Error(r.reason);
  return r.event;
}

function matcherOf(...docs: Array<Record<string, unknown>>): EventMatcher {
  const m = new EventMatcher();
  for (const d of docs) m.upsert(event(d));
  return m;
}

/** The fired event ids with their bindings, sorted by id. */
function fired(r: MatchResult): Array<[string, Record<string, string>]> {
  expect(r.kind, JSON.stringify(r)).to.equal('match');
  if (r.kind !== 'match') return [];
  return r.matches.map((m) => [m.event.id, m.bindings] as [string, Record<string, string>]).sort((a, b) => a[0].localeCompare(b[0]));
}

describe('EventMatcher', () => {
  it("fires the seed's event for GET /send_email and answers 405 for POST", () => {
    const m = new EventMatcher();
    const r = parseEventDoc(seedEvent);
    if (!r.ok) throw new Error(r.reason);
    m.upsert(r.event);
    const got = m.match('GET', '/send_email', {});
    expect(got.kind).to.equal('match');
    if (got.kind === 'match') {
      expect(got.matches).to.have.length(1);
      expect(got.matches[0]!.event).to.equal(r.event);
      expect(got.matches[0]!.trigger).to.equal(r.event.triggers[0]);
    }
    expect(m.match('POST', '/send_email', {})).to.deep.equal({ kind: 'method', allowed: ['GET'] });
    expect(m.match('GET', '/send_mail', {})).to.deep.equal({ kind: 'none' });
    expect(m.get('email_event')).to.equal(r.event);
    expect(m.size).to.equal(1);
  });

  it('routesFor lists every trigger whose pattern matches the path, whatever its method and parameters', () => {
    const m = matcherOf(
      { _id: 'a', trigger: { '/api/:thing': { method: 'POST', parameters: { kind: 'x' } } } },
      { _id: 'b', trigger: [{ path: '/api/*' }] },
      { _id: 'c', trigger: { '/other': {} } },
      { _id: 'd', disabled: true, trigger: { '/api/entries': {} } },
    );
    const found = m.routesFor('/api/entries').map((r) => [r.event.id, r.trigger.methods]).sort();
    expect(found).to.deep.equal([['a', ['POST']], ['b', '*']]);
    expect(m.routesFor('/nowhere')).to.deep.equal([]);
    expect(fired(m.match('GET', '/other', {})), 'the lookup leaves the matcher as it was').to.deep.equal([['c', {}]]);
  });

  it('binds both segments of /emit_document/:db/:docid', () => {
    const m = matcherOf({ _id: 'emit', trigger: { '/emit_document/:db/:docid': {} } });
    expect(fired(m.match('GET', '/emit_document/inbox/doc-1', {}))).to.deep.equal([['emit', { db: 'inbox', docid: 'doc-1' }]]);
    expect(m.match('GET', '/emit_document/inbox', {})).to.deep.equal({ kind: 'none' });
    expect(m.match('GET', '/emit_document/inbox/doc-1/extra', {})).to.deep.equal({ kind: 'none' });
    expect(m.match('GET', '/emit_document//doc-1', {}), 'an empty segment does not bind').to.deep.equal({ kind: 'none' });
  });

  it('binds the tail of /files/* as "*", possibly empty', () => {
    const m = matcherOf({ _id: 'files', trigger: { '/files/*': {} } });
    expect(fired(m.match('GET', '/files/a/b.txt', {}))).to.deep.equal([['files', { '*': 'a/b.txt' }]]);
    expect(fired(m.match('GET', '/files/a.txt', {}))).to.deep.equal([['files', { '*': 'a.txt' }]]);
    expect(fired(m.match('GET', '/files/dir/', {})), 'a wildcard tail keeps its trailing slash').to.deep.equal([['files', { '*': 'dir/' }]]);
    expect(fired(m.match('GET', '/files', {}))).to.deep.equal([['files', { '*': '' }]]);
    expect(fired(m.match('GET', '/files/', {}))).to.deep.equal([['files', { '*': '' }]]);
    expect(m.match('GET', '/filesystem/a', {})).to.deep.equal({ kind: 'none' });
  });

  it('combines bindings with a wildcard, and a root wildcard catches everything', () => {
    const m = matcherOf({ _id: 'mix', trigger: { '/u/:user/files/*': {} } }, { _id: 'all', trigger: { '/*': { method: 'DELETE' } } });
    expect(fired(m.match('DELETE', '/u/ann/files/x/y', {}))).to.deep.equal([['all', { '*': 'u/ann/files/x/y' }], ['mix', { user: 'ann', '*': 'x/y' }]]);
    expect(fired(m.match('DELETE', '/', {}))).to.deep.equal([['all', { '*': '' }]]);
  });

  it('ignores one trailing slash on the message path, and a path given without its leading slash', () => {
    const m = matcherOf({ _id: 's', trigger: { '/send_email': {} } }, { _id: 'root', trigger: { '/': {} } });
    expect(fired(m.match('GET', '/send_email/', {}))).to.deep.equal([['s', {}]]);
    expect(fired(m.match('GET', 'send_email', {}))).to.deep.equal([['s', {}]]);
    expect(fired(m.match('GET', '/', {}))).to.deep.equal([['root', {}]]);
    expect(fired(m.match('GET', '', {}))).to.deep.equal([['root', {}]]);
  });

  it('prefers nothing: literal and parameter routes on the same path both fire', () => {
    const m = matcherOf({ _id: 'lit', trigger: { '/doc/new': {} } }, { _id: 'param', trigger: { '/doc/:id': {} } });
    expect(fired(m.match('GET', '/doc/new', {}))).to.deep.equal([['lit', {}], ['param', { id: 'new' }]]);
    expect(fired(m.match('GET', '/doc/42', {}))).to.deep.equal([['param', { id: '42' }]]);
  });

  it('keeps binding names per event when two patterns share a parameter position', () => {
    const m = matcherOf({ _id: 'a', trigger: { '/x/:one': {} } }, { _id: 'b', trigger: { '/x/:two': {} } });
    expect(fired(m.match('GET', '/x/v', {}))).to.deep.equal([['a', { one: 'v' }], ['b', { two: 'v' }]]);
  });

  describe('trigger parameters', () => {
    const m = matcherOf(
      { _id: 'red', trigger: { '/paint': { parameters: { color: 'red' } } } },
      { _id: 'coats', trigger: { '/paint': { parameters: { coats: 2, glossy: true } } } },
      { _id: 'any', trigger: { '/dye': { parameters: { color: ':color' } } } },
      { _id: 'renamed', trigger: { '/tint/:wall': { parameters: { color: ':c' } } } },
    );

    it('fires when a literal parameter equals the message parameter', () => {
      expect(fired(m.match('GET', '/paint', { color: 'red' }))).to.deep.equal([['red', {}]]);
    });

    it('does not fire on a literal mismatch or a missing parameter: 404, not 405', () => {
      expect(m.match('GET', '/paint', { color: 'blue' })).to.deep.equal({ kind: 'none' });
      expect(m.match('GET', '/paint', {})).to.deep.equal({ kind: 'none' });
    });

    it('compares literals as strings: a query string "2" equals 2, a JSON 2 too, "true" equals true', () => {
      expect(fired(m.match('GET', '/paint', { coats: '2', glossy: 'true' }))).to.deep.equal([['coats', {}]]);
      expect(fired(m.match('POST', '/paint', { coats: 2, glossy: true }))).to.deep.equal([['coats', {}]]);
      expect(m.match('POST', '/paint', { coats: [2], glossy: true })).to.deep.equal({ kind: 'none' });
    });

    it('binds ":color" from the message parameters, and requires it', () => {
      expect(fired(m.match('GET', '/dye', { color: 'teal' }))).to.deep.equal([['any', { color: 'teal' }]]);
      // a parameter binds its value as given: a number stays a number (as the original did)
      expect(fired(m.match('POST', '/dye', { color: 7 }))).to.deep.equal([['any', { color: 7 }]]);
      expect(m.match('GET', '/dye', {})).to.deep.equal({ kind: 'none' });
      expect(m.match('GET', '/dye', { color: null })).to.deep.equal({ kind: 'none' });
      expect(fired(m.match('GET', '/tint/north', { color: 'ochre' }))).to.deep.equal([['renamed', { wall: 'north', c: 'ochre' }]]);
    });

    it('reads only own parameters, never inherited ones such as "constructor"', () => {
      const proto = matcherOf({ _id: 'p', trigger: { '/p': { parameters: { constructor: ':c' } } } });
      expect(proto.match('GET', '/p', {})).to.deep.equal({ kind: 'none' });
    });
  });

  describe('methods', () => {
    const m = matcherOf(
      { _id: 'list', trigger: { '/doc': { method: ['get', 'PUT'] } } },
      { _id: 'post', trigger: [{ path: '/doc', method: 'POST', parameters: { kind: 'note' } }] },
      { _id: 'any', trigger: { '/open': {} } },
    );

    it('accepts any method of a list, compared case-insensitively', () => {
      expect(fired(m.match('GET', '/doc', {}))).to.deep.equal([['list', {}]]);
      expect(fired(m.match('put', '/doc', {}))).to.deep.equal([['list', {}]]);
    });

    it('answers 405 with every allowed method when the path matches but no method does', () => {
      expect(m.match('DELETE', '/doc', {})).to.deep.equal({ kind: 'method', allowed: ['GET', 'POST', 'PUT'] });
    });

    it('answers 404, not 405, when the method is allowed but a literal parameter differs', () => {
      expect(m.match('POST', '/doc', { kind: 'task' })).to.deep.equal({ kind: 'none' });
      expect(fired(m.match('POST', '/doc', { kind: 'note' }))).to.deep.equal([['post', {}]]);
    });

    it('accepts every method when none is given', () => {
      for (const method of ['GET', 'POST', 'PATCH', 'PROPFIND']) expect(fired(m.match(method, '/open', {}))).to.deep.equal([['any', {}]]);
    });
  });

  it('fires an event once even when several of its triggers match, with its first matching trigger', () => {
    const m = matcherOf({ _id: 'multi', trigger: [{ path: '/a/*' }, { path: '/a/:x' }, { path: '/a/b' }] });
    const r = m.match('GET', '/a/b', {});
    expect(r.kind).to.equal('match');
    if (r.kind === 'match') {
      expect(r.matches).to.have.length(1);
      expect(r.matches[0]!.trigger.path).to.equal('/a/*');
      expect(r.matches[0]!.bindings).to.deep.equal({ '*': 'b' });
    }
    const later = matcherOf({ _id: 'later', trigger: [{ path: '/a/b', method: 'POST' }, { path: '/a/:x' }] });
    const r2 = later.match('GET', '/a/b', {});
    expect(r2.kind === 'match' && r2.matches.map((x) => x.trigger.path)).to.deep.equal(['/a/:x']);
  });

  it('leaves disabled events and changes or schedule triggers out of path matching, but keeps them by id', () => {
    const m = matcherOf(
      { _id: 'off', disabled: true, trigger: { '/send_email': {} } },
      { _id: 'clock', trigger: { schedule: { every: '1m' }, changes: { db: 'inbox' } } },
    );
    expect(m.match('GET', '/send_email', {})).to.deep.equal({ kind: 'none' });
    expect(m.get('off')?.disabled).to.equal(true);
    expect(m.get('clock')?.triggers).to.have.length(2);
    expect(m.size).to.equal(2);
    expect([...m.all()].map((e) => e.id).sort()).to.deep.equal(['clock', 'off']);
  });

  describe('editing and removing', () => {
    it('replaces every route of an edited event: the old path no longer fires', () => {
      const m = matcherOf({ _id: 'e', trigger: { '/old/:a': {}, '/both': { method: 'GET' } } });
      m.upsert(event({ _id: 'e', trigger: { '/new/:b': {}, '/both': { method: 'POST' } } }));
      expect(m.match('GET', '/old/1', {})).to.deep.equal({ kind: 'none' });
      expect(fired(m.match('GET', '/new/1', {}))).to.deep.equal([['e', { b: '1' }]]);
      expect(m.match('GET', '/both', {})).to.deep.equal({ kind: 'method', allowed: ['POST'] });
      expect(m.size).to.equal(1);
    });

    it('disabling an event stops it; enabling it again restores it', () => {
      const m = matcherOf({ _id: 'e', trigger: { '/p': {} } });
      m.upsert(event({ _id: 'e', disabled: true, trigger: { '/p': {} } }));
      expect(m.match('GET', '/p', {})).to.deep.equal({ kind: 'none' });
      m.upsert(event({ _id: 'e', trigger: { '/p': {} } }));
      expect(fired(m.match('GET', '/p', {}))).to.deep.equal([['e', {}]]);
    });

    it('removing one event leaves the others on the same and neighbouring paths', () => {
      const m = matcherOf(
        { _id: 'a', trigger: { '/x/:id': {} } },
        { _id: 'b', trigger: { '/x/:id': {} } },
        { _id: 'c', trigger: { '/x/*': {} } },
        { _id: 'd', trigger: { '/x/lit': {} } },
      );
      m.remove('a');
      m.remove('d');
      m.remove('missing');
      expect(fired(m.match('GET', '/x/lit', {}))).to.deep.equal([['b', { id: 'lit' }], ['c', { '*': 'lit' }]]);
      expect(m.get('a')).to.equal(undefined);
      expect(m.size).to.equal(2);
      m.clear();
      expect(m.size).to.equal(0);
      expect(m.match('GET', '/x/lit', {})).to.deep.equal({ kind: 'none' });
    });

    it('leaves no routes behind after churn: the tree is empty again', () => {
      const m = new EventMatcher();
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 200; i++) m.upsert(event({ _id: `e${i}`, trigger: { [`/r${round}/${i}/:x`]: {}, [`/w/${i}/*`]: {} } }));
      }
      for (let i = 0; i < 200; i++) m.remove(`e${i}`);
      const root = (m as unknown as { root: { literal: Map<string, unknown> | null; param: unknown; exact: unknown[]; wildcard: unknown[] } }).root;
      expect(root.literal?.size ?? 0).to.equal(0);
      expect([root.param, root.exact.length, root.wildcard.length]).to.deep.equal([null, 0, 0]);
    });
  });

  it('matches correctly with thousands of events loaded', () => {
    const m = new EventMatcher();
    const n = 5000;
    for (let i = 0; i < n; i++) {
      const shape = i % 4;
      const trigger =
        shape === 0 ? { [`/svc${i}/ping`]: { method: 'GET' } }
        : shape === 1 ? { [`/svc${i}/doc/:id`]: { method: ['GET', 'PUT'] } }
        : shape === 2 ? { [`/svc${i}/files/*`]: {} }
        : { [`/svc${i}/paint`]: { parameters: { color: `c${i}` } } };
      m.upsert(event({ _id: `e${i}`, trigger }));
    }
    expect(m.size).to.equal(n);
    for (let i = 0; i < n; i += 37) {
      const shape = i % 4;
      if (shape === 0) {
        expect(fired(m.match('GET', `/svc${i}/ping`, {}))).to.deep.equal([[`e${i}`, {}]]);
        expect(m.match('POST', `/svc${i}/ping`, {})).to.deep.equal({ kind: 'method', allowed: ['GET'] });
      } else if (shape === 1) {
        expect(fired(m.match('PUT', `/svc${i}/doc/d${i}`, {}))).to.deep.equal([[`e${i}`, { id: `d${i}` }]]);
      } else if (shape === 2) {
        expect(fired(m.match('GET', `/svc${i}/files/a/${i}`, {}))).to.deep.equal([[`e${i}`, { '*': `a/${i}` }]]);
      } else {
        expect(fired(m.match('GET', `/svc${i}/paint`, { color: `c${i}` }))).to.deep.equal([[`e${i}`, {}]]);
        expect(m.match('GET', `/svc${i}/paint`, { color: `c${i + 1}` })).to.deep.equal({ kind: 'none' });
      }
      expect(m.match('GET', `/svc${i}/missing`, {})).to.deep.equal({ kind: 'none' });
    }
  });
});
