import { expect } from 'chai';
import { EventMatcher } from '../../src/events/matcher.ts';
import { parseEventDoc } from '../../src/events/parse.ts';
import { buildParameters, resolveArguments } from '../../src/events/resolve.ts';
import { seedEvent } from './corpus.ts';

describe('resolveArguments', () => {
  it("gives the seed's worker its recipient on top of the worker document's defaults", () => {
    const r = parseEventDoc(seedEvent);
    if (!r.ok) throw new Error(r.reason);
    const ref = r.event.workers[0]!;
    expect(resolveArguments({ from: 'noreply@example.com' }, ref.arguments, {})).to.deep.equal({
      from: 'noreply@example.com',
      recipient: 'support@yourcompany.com',
    });
  });

  it("lets the event's arguments override the defaults key by key, replacing objects whole", () => {
    const out = resolveArguments({ a: 1, b: 2, opts: { x: 1, y: 2 } }, { b: 3, opts: { x: 9 } }, {});
    expect(out).to.deep.equal({ a: 1, b: 3, opts: { x: 9 } });
  });

  it('substitutes ":name" and "*" with bound values, at any depth', () => {
    const bindings = { db: 'inbox', docid: 'doc-1', '*': 'a/b.txt' };
    const out = resolveArguments({}, {
      db: ':db',
      file: '*',
      target: { db: ':db', ids: [':docid', 'fixed', { deep: '*' }] },
    }, bindings);
    expect(out).to.deep.equal({ db: 'inbox', file: 'a/b.txt', target: { db: 'inbox', ids: ['doc-1', 'fixed', { deep: 'a/b.txt' }] } });
  });

  it('substitutes only whole strings, and leaves unbound placeholders and worker defaults as written', () => {
    const out = resolveArguments({ d: ':db' }, { a: 'prefix-:db', b: ':nope', c: ':', e: '**', n: 5, z: null }, { db: 'inbox' });
    expect(out).to.deep.equal({ d: ':db', a: 'prefix-:db', b: ':nope', c: ':', e: '**', n: 5, z: null });
  });

  it('never mutates the event definition or the defaults it is given', () => {
    const defaults = { a: 1 };
    const eventArgs = { t: { db: ':db' } };
    resolveArguments(defaults, eventArgs, { db: 'x' });
    expect(defaults).to.deep.equal({ a: 1 });
    expect(eventArgs).to.deep.equal({ t: { db: ':db' } });
  });

  it('keeps "__proto__" from a document as a plain key, touching no prototype', () => {
    const eventArgs = JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}') as Record<string, unknown>;
    const out = resolveArguments({}, eventArgs, {});
    expect(Object.getPrototypeOf(out)).to.equal(Object.prototype);
    expect(Object.prototype.hasOwnProperty.call(out, '__proto__')).to.equal(true);
    expect((out as { polluted?: boolean }).polluted).to.equal(undefined);
  });

  it('tolerates missing defaults and arguments', () => {
    expect(resolveArguments(undefined, undefined, {})).to.deep.equal({});
  });
});

describe('buildParameters', () => {
  it('overlays the message parameters with bindings, then with arguments', () => {
    const out = buildParameters({ color: 'red', q: '1', db: 'from-query' }, { db: 'inbox' }, { color: 'blue', recipient: 'x' });
    expect(out).to.deep.equal({ color: 'blue', q: '1', db: 'inbox', recipient: 'x' });
  });

  it('lets a request add parameters but never override a configured argument', () => {
    const args = { recipient: 'support@yourcompany.com' };
    const out = buildParameters({ recipient: 'attacker@example.com', subject: 'hi' }, {}, args);
    expect(out).to.deep.equal({ recipient: 'support@yourcompany.com', subject: 'hi' });
  });

  it('works end to end from a match: path bindings reach arguments and parameters', () => {
    const r = parseEventDoc({
      _id: 'emit',
      trigger: { '/emit_document/:db/:docid': { parameters: { color: ':color' } } },
      workers: { emitter: { database: ':db', id: ':docid', tint: ':color' } },
    });
    if (!r.ok) throw new Error(r.reason);
    const m = new EventMatcher();
    m.upsert(r.event);
    const query = { color: 'teal', extra: 'yes' };
    const res = m.match('GET', '/emit_document/inbox/doc-1', query);
    if (res.kind !== 'match') throw new Error(res.kind);
    const { bindings } = res.matches[0]!;
    const args = resolveArguments({ verbose: false }, r.event.workers[0]!.arguments, bindings);
    expect(args).to.deep.equal({ verbose: false, database: 'inbox', id: 'doc-1', tint: 'teal' });
    expect(buildParameters(query, bindings, args)).to.deep.equal({
      color: 'teal', extra: 'yes', db: 'inbox', docid: 'doc-1',
      verbose: false, database: 'inbox', id: 'doc-1', tint: 'teal',
    });
  });
});
