/**
 * The validate_doc_update functions, evaluated the way CouchDB does: the source string
 * alone, in a fresh JavaScript context, called with (newDoc, oldDoc, userCtx, secObj).
 * The store's own 403 through a real database is covered by the store's init spec.
 */
import vm from 'node:vm';
import { expect } from 'chai';
import { eventsDesignDoc, kDesignDocId, workersDesignDoc } from '../../src/events/design.ts';
import { parseEventDoc } from '../../src/events/parse.ts';
import { compiledRules } from '../../src/events/rules.ts';
import { badEvents, badWorkers, goodEvents, goodWorkers, randomEventDocs, seedEvent, seedWorker } from './corpus.ts';

type Validate = (newDoc: unknown, oldDoc: unknown, userCtx: unknown, secObj: unknown) => void;

function compile(source: string): Validate {
  return vm.runInNewContext(`(${source})`, {}) as Validate;
}

const admin = { name: 'root', roles: ['_admin'] };
const stranger = { name: 'eve', roles: [] };
const noSecurity = { admins: { names: [], roles: [] }, members: { names: [], roles: [] } };

/** What the function threw, or undefined when it accepted the write. */
function verdict(validate: Validate, doc: unknown, userCtx: unknown = admin, secObj: unknown = noSecurity): Record<string, string> | undefined {
  try {
    validate(doc, null, userCtx, secObj);
    return undefined;
  } catch (err) {
    return err as Record<string, string>;
  }
}

describe('validate_doc_update design documents', () => {
  const events = compile(eventsDesignDoc().validate_doc_update);
  const workers = compile(workersDesignDoc().validate_doc_update);

  it('are the _design/lively documents', () => {
    expect(eventsDesignDoc()._id).to.equal(kDesignDocId);
    expect(workersDesignDoc('deployer')._id).to.equal('_design/lively');
  });

  it('are ES5 source: no arrow functions, template literals, let or const', () => {
    for (const doc of [eventsDesignDoc('ops'), workersDesignDoc()]) {
      const src = doc.validate_doc_update;
      expect(src.startsWith('function (newDoc, oldDoc, userCtx, secObj) {')).to.equal(true);
      expect(src).to.not.match(/=>|`|\blet\s|\bconst\s|\bclass\s|\.\.\.[A-Za-z]/);
    }
  });

  describe('events', () => {
    it("accepts the seed's event and every good document from an admin", () => {
      expect(verdict(events, seedEvent)).to.equal(undefined);
      for (const [name, doc] of goodEvents) expect(verdict(events, doc), name).to.equal(undefined);
    });

    it('refuses every bad document with the reason the parser gives', () => {
      for (const [name, doc, prefix] of badEvents) {
        const parsed = parseEventDoc(doc);
        expect(parsed.ok, name).to.equal(false);
        const thrown = verdict(events, doc);
        expect(thrown, name).to.deep.equal({ forbidden: parsed.ok ? '' : parsed.reason });
        expect(thrown!.forbidden!.startsWith(prefix), name).to.equal(true);
      }
    });

    it('agrees with the parser on thousands of random documents', () => {
      let refused = 0;
      for (const doc of randomEventDocs(3000, 11)) {
        const parsed = parseEventDoc(doc);
        const thrown = verdict(events, doc);
        if (parsed.ok) expect(thrown, JSON.stringify(doc)).to.equal(undefined);
        else {
          refused++;
          expect(thrown, JSON.stringify(doc)).to.deep.equal({ forbidden: parsed.reason });
        }
      }
      // The corpus must exercise both answers for the agreement to mean anything.
      expect(refused).to.be.within(1, 2999);
    });

    it('refuses writes from users who are neither admins nor the writer role: forbidden (403) for a user, unauthorized (401) for nobody', () => {
      expect(verdict(events, seedEvent, stranger)).to.deep.equal({ forbidden: 'only admins may write LivelyCouch events' });
      expect(verdict(events, seedEvent, null)).to.deep.equal({ unauthorized: 'only admins may write LivelyCouch events' });
      expect(verdict(events, seedEvent, { name: null, roles: [] })).to.have.property('unauthorized');
      const withRole = compile(eventsDesignDoc('deployer').validate_doc_update);
      expect(verdict(withRole, seedEvent, { name: 'ci', roles: ['deployer'] })).to.equal(undefined);
      expect(verdict(withRole, seedEvent, { name: 'ci', roles: ['reader'] })).to.deep.equal({ forbidden: 'only admins or the "deployer" role may write LivelyCouch events' });
    });

    it("counts the database's _security admins, by name or by role, as admins", () => {
      const sec = { admins: { names: ['alice'], roles: ['owners'] }, members: { names: [], roles: [] } };
      expect(verdict(events, seedEvent, { name: 'alice', roles: [] }, sec)).to.equal(undefined);
      expect(verdict(events, seedEvent, { name: 'bob', roles: ['owners'] }, sec)).to.equal(undefined);
      expect(verdict(events, seedEvent, { name: 'bob', roles: ['readers'] }, sec)).to.have.property('forbidden');
    });

    it('lets admins and the writer role delete, even a broken document; strangers not', () => {
      const tombstone = { _id: 'email_event', _rev: '2-x', _deleted: true };
      expect(verdict(events, tombstone)).to.equal(undefined);
      expect(verdict(compile(eventsDesignDoc('deployer').validate_doc_update), tombstone, { name: 'ci', roles: ['deployer'] })).to.equal(undefined);
      expect(verdict(events, tombstone, stranger)).to.have.property('forbidden');
    });

    it('lets only admins write design documents, without checking them as events', () => {
      const ddoc = { _id: '_design/other', views: {} };
      expect(verdict(events, ddoc)).to.equal(undefined);
      const withRole = compile(eventsDesignDoc('deployer').validate_doc_update);
      expect(verdict(withRole, ddoc, { name: 'ci', roles: ['deployer'] })).to.deep.equal({ forbidden: 'only admins may change design documents' });
    });
  });

  describe('workers', () => {
    it("accepts the seed's worker document and every good one", () => {
      expect(verdict(workers, seedWorker)).to.equal(undefined);
      for (const [name, doc] of goodWorkers) expect(verdict(workers, doc), name).to.equal(undefined);
    });

    describe('refuses each bad worker document with a reason naming the field', () => {
      for (const [name, doc, prefix] of badWorkers) {
        it(name, () => {
          const thrown = verdict(workers, doc);
          expect(thrown).to.have.property('forbidden');
          expect(thrown!.forbidden!.startsWith(prefix), `"${thrown!.forbidden}" should start with "${prefix}"`).to.equal(true);
          expect(thrown!.forbidden).to.equal(compiledRules().workerProblem(doc));
        });
      }
    });

    it('checks authorisation before content', () => {
      expect(verdict(workers, { _id: 'w' }, stranger)).to.deep.equal({ forbidden: 'only admins may write LivelyCouch workers' });
    });
  });
});
