import { expect } from 'chai';
import { parseCron, parseEventDoc } from '../../src/events/parse.ts';
import type { EventDef } from '../../src/events/model.ts';
import { badEvents, goodEvents, randomEventDocs, seedEvent } from './corpus.ts';

function parsed(doc: unknown): EventDef {
  const r = parseEventDoc(doc);
  if (!r.ok) throw new Error(`expected a valid event, got: ${r.reason}`);
  return r.event;
}

describe('parseEventDoc', () => {
  it("parses the seed's event document as written", () => {
    const e = parsed({ ...seedEvent, _rev: '1-a' });
    expect(e).to.deep.equal({
      id: 'email_event',
      rev: '1-a',
      triggers: [{ kind: 'http', path: '/send_email', methods: ['GET'], parameters: {} }],
      workers: [{ name: 'send_email', arguments: { recipient: 'support@yourcompany.com' } }],
      disabled: false,
      auth: 'public',
    });
  });

  it('parses the array form of triggers and workers into the same model', () => {
    const e = parsed({
      _id: 'a',
      trigger: [{ path: '/paint/:wall', method: ['get', 'post'], parameters: { color: ':color', coats: 2 } }],
      workers: [{ name: 'painter', parameters: { brush: 'wide' } }, { name: 'logger', arguments: { level: 'info' } }, { name: 'plain' }],
    });
    expect(e.triggers).to.deep.equal([{ kind: 'http', path: '/paint/:wall', methods: ['GET', 'POST'], parameters: { color: ':color', coats: 2 } }]);
    expect(e.workers).to.deep.equal([
      { name: 'painter', arguments: { brush: 'wide' } },
      { name: 'logger', arguments: { level: 'info' } },
      { name: 'plain', arguments: {} },
    ]);
  });

  it('reads an absent method, "*" or a list containing "*" as any method, and de-duplicates a list', () => {
    const e = parsed({ _id: 'm', trigger: { '/a': {}, '/b': { method: '*' }, '/c': { method: ['GET', '*'] }, '/d': { method: ['get', 'GET', 'Put'] } }, workers: {} });
    expect(e.triggers.map((t) => (t.kind === 'http' ? t.methods : null))).to.deep.equal(['*', '*', '*', ['GET', 'PUT']]);
  });

  it('parses changes and schedule triggers in both forms', () => {
    const obj = parsed({ _id: 'o', trigger: { changes: { db: 'inbox', selector: { type: 'mail' }, include_docs: true }, schedule: { every: '1m' } }, workers: {} });
    expect(obj.triggers).to.deep.equal([
      { kind: 'changes', db: 'inbox', selector: { type: 'mail' }, includeDocs: true },
      { kind: 'schedule', every: 60_000 },
    ]);
    const arr = parsed({ _id: 'a', trigger: [{ changes: { db: 'inbox' } }, { schedule: { cron: ' */5  *  * * * ' } }, { schedule: { every: 1500 } }], workers: {} });
    expect(arr.triggers).to.deep.equal([
      { kind: 'changes', db: 'inbox', includeDocs: false },
      { kind: 'schedule', cron: '*/5 * * * *' },
      { kind: 'schedule', every: 1500 },
    ]);
  });

  it('reads "every" durations in ms, s, m, h and d', () => {
    const every = (v: unknown) => {
      const t = parsed({ _id: 's', trigger: { schedule: { every: v } }, workers: {} }).triggers[0]!;
      return t.kind === 'schedule' ? t.every : undefined;
    };
    expect([every('1500ms'), every('30s'), every('1m'), every('2h'), every('1d'), every('1.5s'), every(1000)]).to.deep.equal([1500, 30_000, 60_000, 7_200_000, 86_400_000, 1500, 1000]);
  });

  it('reads "durable" and a worker\'s retry policy (exponential backoff from "backoff", 1 s when absent)', () => {
    expect(parsed({ _id: 'd', durable: true, workers: {} }).durable).to.equal(true);
    expect(parsed({ _id: 'd', durable: false, workers: {} })).to.not.have.property('durable');
    const e = parsed({ _id: 'r', workers: [{ name: 'a', parameters: { x: 1 }, retry: { attempts: 3, backoff: '1.5s' } }, { name: 'b', retry: { attempts: 2 } }, { name: 'c', retry: { attempts: 4, backoff: 0 } }, { name: 'd' }] });
    expect(e.workers).to.deep.equal([
      { name: 'a', arguments: { x: 1 }, retry: { attempts: 3, backoffMs: 1500 } },
      { name: 'b', arguments: {}, retry: { attempts: 2, backoffMs: 1000 } },
      { name: 'c', arguments: {}, retry: { attempts: 4, backoffMs: 0 } },
      { name: 'd', arguments: {} },
    ]);
    // The seed's object form: its value is the arguments, so "retry" there is an argument.
    expect(parsed({ _id: 'o', workers: { w: { retry: { attempts: 3 } } } }).workers).to.deep.equal([{ name: 'w', arguments: { retry: { attempts: 3 } } }]);
  });

  it('reads "response" and "cors" ("*" as every origin, no credentials); without them neither is there', () => {
    const e = parsed({ _id: 'e', workers: [{ name: 'a' }, { name: 'b' }], response: 'b', cors: '*' });
    expect(e.response).to.equal('b');
    expect(e.cors).to.deep.equal({ origins: '*', credentials: false, expose: [] });
    const listed = parsed({ _id: 'e', workers: { a: {} }, cors: { origins: ['https://a.example'], credentials: true, headers: ['x-t'], expose: ['etag'], maxAge: 5 } });
    expect(listed.cors).to.deep.equal({ origins: ['https://a.example'], credentials: true, headers: ['x-t'], expose: ['etag'], maxAge: 5 });
    const plain = parsed({ _id: 'e', workers: { a: {} } });
    expect(plain).to.not.have.property('response');
    expect(plain).to.not.have.property('cors');
  });

  it('honours disabled and auth', () => {
    expect(parsed({ _id: 'd', disabled: true, workers: {} }).disabled).to.equal(true);
    expect(parsed({ _id: 'd', disabled: false, workers: {} }).disabled).to.equal(false);
    expect(parsed({ _id: 'a', workers: {} }).auth).to.equal('public');
    expect(parsed({ _id: 'a', auth: 'user', workers: {} }).auth).to.equal('user');
    expect(parsed({ _id: 'a', auth: 'admin', workers: {} }).auth).to.equal('admin');
    expect(parsed({ _id: 'a', auth: { roles: ['ops', 'billing', 'ops'] }, workers: {} }).auth).to.deep.equal({ roles: ['ops', 'billing'] });
    // The single-role form reads as a list of one.
    expect(parsed({ _id: 'a', auth: { role: 'ops' }, workers: {} }).auth).to.deep.equal({ roles: ['ops'] });
  });

  it('accepts every document of the good corpus', () => {
    for (const [name, doc] of goodEvents) {
      const r = parseEventDoc(doc);
      expect(r.ok, `${name}: ${r.ok ? '' : r.reason}`).to.equal(true);
    }
  });

  describe('refuses each malformed document with a reason naming the field', () => {
    for (const [name, doc, prefix] of badEvents) {
      it(name, () => {
        const r = parseEventDoc(doc);
        expect(r.ok).to.equal(false);
        if (r.ok) return;
        expect(r.reason.startsWith(prefix), `reason "${r.reason}" should start with "${prefix}"`).to.equal(true);
        expect(r.reason).to.match(/: \S/);
      });
    }
  });

  it('reports the id of a refused document', () => {
    const r = parseEventDoc({ _id: 'broken', trigger: 5, workers: {} });
    expect(r).to.deep.equal({ ok: false, id: 'broken', reason: 'trigger: must be an object keyed by path, or a list of triggers' });
  });

  it('marks design documents so the loader skips them instead of listing them as invalid', () => {
    const r = parseEventDoc({ _id: '_design/lively', validate_doc_update: 'function () {}' });
    expect(r).to.deep.include({ ok: false, id: '_design/lively', design: true });
    const bad = parseEventDoc({ _id: 'plain', trigger: 1, workers: {} });
    expect(bad.ok === false && bad.design).to.equal(undefined);
  });

  it('never throws, whatever it is given', () => {
    const hostile = new Proxy({}, { get() { throw new Error('boom'); }, ownKeys() { throw new Error('boom'); } });
    const getter = { _id: 'g', workers: {}, get trigger() { throw new Error('getter'); } };
    const inputs: unknown[] = [undefined, null, 0, NaN, 'x', true, [], {}, () => 1, Symbol('s'), 10n, hostile, getter,
      { _id: 5 }, { _id: '' }, { _id: 'x', trigger: null, workers: null }, { _id: 'x', trigger: [null], workers: [null] },
      Object.create(null), { _id: 'x', workers: { constructor: {} }, trigger: { '/__proto__': {} } }];
    inputs.push(...randomEventDocs(2000));
    let accepted = 0;
    for (const input of inputs) {
      const r = parseEventDoc(input);
      expect(r).to.have.property('ok');
      if (r.ok) accepted++;
      else expect(r.reason).to.match(/^(document|_id|disabled|durable|auth|trigger|workers)\b[^ ]*: \S/);
    }
    expect(accepted).to.be.greaterThan(0);
  });
});

describe('parseCron', () => {
  it('expands steps, ranges, lists and names for the scheduler', () => {
    const r = parseCron('*/15 8-10 1,15 jan-mar mon-fri');
    expect(r).to.deep.equal({ ok: true, fields: [[0, 15, 30, 45], [8, 9, 10], [1, 15], [1, 2, 3], [1, 2, 3, 4, 5]] });
  });

  it('folds day-of-week 7 into Sunday (0) and reads "5/20" as from 5 by 20', () => {
    expect(parseCron('5/20 0 * * 7')).to.deep.equal({ ok: true, fields: [[5, 25, 45], [0], range(1, 31), range(1, 12), [0]] });
  });

  it('says which field is wrong', () => {
    expect(parseCron('* * * 13 *')).to.deep.equal({ ok: false, reason: 'month field "13": "13" is not a value from 1 to 12' });
  });
});

function range(a: number, b: number): number[] {
  return Array.from({ length: b - a + 1 }, (_, i) => a + i);
}
