/**
 * The design documents `init` installs in the events and workers databases: a
 * `validate_doc_update` that refuses writes from anyone but admins (or the configured
 * writer role) and refuses malformed documents with `{ forbidden: "<field>: <what is wrong>" }`.
 *
 * The function embeds kRulesSource, the very text the load-time parser runs, so the
 * store and the loader cannot disagree. It is ES5 for Apache CouchDB 3.x's JavaScript
 * engine and for PouchDB behind the embedded store.
 *
 * Admins are server admins (`_admin` role) and the database's `_security` admins (by
 * name or role); deletions by them or the writer role are always allowed, so a broken
 * document can still be removed. Design documents may be written by admins only.
 */
import { kRulesSource } from './rules.ts';

export const kDesignDocId = '_design/lively';

export interface ValidationDesignDoc {
  _id: string;
  validate_doc_update: string;
}

export function eventsDesignDoc(writerRole?: string): ValidationDesignDoc {
  return { _id: kDesignDocId, validate_doc_update: validateSource('eventProblem', 'events', writerRole) };
}

export function workersDesignDoc(writerRole?: string): ValidationDesignDoc {
  return { _id: kDesignDocId, validate_doc_update: validateSource('workerProblem', 'workers', writerRole) };
}

function validateSource(check: 'eventProblem' | 'workerProblem', what: string, writerRole: string | undefined): string {
  const role = writerRole ? JSON.stringify(writerRole) : 'null';
  const who = writerRole ? `admins or the ${JSON.stringify(writerRole)} role` : 'admins';
  return `function (newDoc, oldDoc, userCtx, secObj) {
${kRulesSource}
  var writerRole = ${role};
  var roles = (userCtx && userCtx.roles) || [];
  var isAdmin = roles.indexOf('_admin') !== -1;
  var admins = secObj && secObj.admins;
  if (!isAdmin && admins) {
    if (admins.names && userCtx && userCtx.name && admins.names.indexOf(userCtx.name) !== -1) isAdmin = true;
    for (var r = 0; !isAdmin && admins.roles && r < roles.length; r++) {
      if (admins.roles.indexOf(roles[r]) !== -1) isAdmin = true;
    }
  }
  function deny(reason) {
    // CouchDB's convention: 401 when nobody logged in, 403 for a user who may not.
    var e = {};
    e[userCtx && userCtx.name ? 'forbidden' : 'unauthorized'] = reason;
    throw(e);
  }
  if (typeof newDoc._id === 'string' && newDoc._id.indexOf('_design/') === 0) {
    if (!isAdmin) deny('only admins may change design documents');
    return;
  }
  if (!isAdmin && !(writerRole && roles.indexOf(writerRole) !== -1)) {
    deny(${JSON.stringify(`only ${who} may write LivelyCouch ${what}`)});
  }
  if (newDoc._deleted === true) return;
  var problem = ${check}(newDoc);
  if (problem) throw({ forbidden: problem });
}`;
}
