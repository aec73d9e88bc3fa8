/**
 * The rules an event or worker document must follow, written once as plain ES5 source.
 *
 * The same text runs in two places: inside the databases' `validate_doc_update`
 * (Apache CouchDB's JavaScript engine, or PouchDB behind the embedded store), and in
 * node through `compiledRules()` for the load-time parser. One text means a document the
 * store accepts is one the loader accepts, with the same reason when it is not.
 *
 * Keep it ES5: `var`, `function`, no arrow functions, no template literals, no `let`.
 */
import { kDatabaseNamePattern } from '../shared/db-name.ts';

// `/` escaped as this text always had it: design documents already stored stay as they are
const kDbSource = kDatabaseNamePattern.source.replaceAll('/', '\\/');

export const kRulesSource = String.raw`
var NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
var IDENT_RE = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
var METHOD_RE = /^[A-Z][A-Z0-9_-]*$/;
var DB_RE = /${kDbSource}/;
var TYPE_RE = /^[a-z0-9_-]+$/;
var SECRET_RE = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
var DURATION_RE = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/;
var TZ_RE = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/;
var HEADER_RE = /^[A-Za-z0-9!#$%&'*+.^_\x60|~-]+$/;
var ORIGIN_RE = /^[a-z][a-z0-9+.-]*:\/\/[^\/?#\s]+$/;
var UNIT_MS = { ms: 1, s: 1000, m: 60000, h: 3600000, d: 86400000 };
var MAX_ATTEMPTS = 10;
var MIN_EVERY_MS = 1000;
var MAX_BACKOFF_MS = 3600000;
var CRON_DEFS = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'] },
  { name: 'day-of-week', min: 0, max: 7, names: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] }
];

function hasOwn(o, k) { return Object.prototype.hasOwnProperty.call(o, k); }
function isObject(v) { return v !== null && typeof v === 'object' && !Array.isArray(v); }
function quote(s) { return JSON.stringify(s); }
function fieldOf(base, key) { return IDENT_RE.test(key) ? base + '.' + key : base + '[' + quote(key) + ']'; }

function unknownKey(o, allowed) {
  var keys = Object.keys(o);
  for (var i = 0; i < keys.length; i++) if (allowed.indexOf(keys[i]) === -1) return keys[i];
  return null;
}

/* A binding name as written after ':' (":db" binds "db"). */
function validBindingName(n) { return NAME_RE.test(n) && n !== '__proto__'; }

function workerNameProblem(n) {
  if (typeof n !== 'string' || n === '') return 'must be a worker document id (a non-empty string)';
  if (n.charAt(0) === '_') return 'a worker document id must not start with "_"';
  return null;
}

/* The names a path pattern binds, in order ("*" for a trailing wildcard). Assumes a valid pattern. */
function patternBindings(path) {
  var out = [];
  if (path === '/') return out;
  var segs = path.slice(1).split('/');
  for (var i = 0; i < segs.length; i++) {
    if (segs[i] === '*') out.push('*');
    else if (segs[i].charAt(0) === ':') out.push(segs[i].slice(1));
  }
  return out;
}

function patternProblem(path) {
  if (typeof path !== 'string' || path.charAt(0) !== '/') return 'a path must be a string starting with "/"';
  if (path === '/') return null;
  if (/[?#]/.test(path)) return 'a path must not contain "?" or "#"';
  var segs = path.slice(1).split('/');
  var seen = {};
  for (var i = 0; i < segs.length; i++) {
    var s = segs[i];
    if (s === '*') {
      if (i !== segs.length - 1) return '"*" may only be the last segment of a path';
      continue;
    }
    if (s === '') return 'a path must not have an empty segment (no "//" and no trailing "/")';
    if (s.indexOf('*') !== -1) return '"*" may only stand alone as the last segment of a path';
    if (s.charAt(0) === ':') {
      var n = s.slice(1);
      if (!validBindingName(n)) return quote(s) + ' is not a valid binding (":" then letters, digits or "_", not starting with a digit)';
      if (hasOwn(seen, n)) return quote(s) + ' is bound twice in the path';
      seen[n] = true;
    }
  }
  return null;
}

function methodProblem(m, f) {
  if (m === undefined) return null;
  var list = typeof m === 'string' ? [m] : m;
  if (!Array.isArray(list)) return f + ': must be a string or a list of strings';
  if (list.length === 0) return f + ': must not be an empty list (leave "method" out to allow any method)';
  for (var i = 0; i < list.length; i++) {
    if (typeof list[i] !== 'string') return f + ': must be a string or a list of strings';
    var u = list[i].toUpperCase();
    if (u !== '*' && !METHOD_RE.test(u)) return (typeof m === 'string' ? f : f + '[' + i + ']') + ': ' + quote(list[i]) + ' is not an HTTP method';
  }
  return null;
}

/* taken: the names the path already binds; a parameter may not bind one of them again. */
function parametersProblem(p, f, taken) {
  if (p === undefined) return null;
  if (!isObject(p)) return f + ': must be an object of parameter values';
  var keys = Object.keys(p);
  for (var i = 0; i < keys.length; i++) {
    var v = p[keys[i]];
    var fk = fieldOf(f, keys[i]);
    if (typeof v === 'string') {
      if (v.charAt(0) !== ':') continue;
      var n = v.slice(1);
      if (!validBindingName(n)) return fk + ': ' + quote(v) + ' is not a valid binding (":" then letters, digits or "_", not starting with a digit)';
      if (taken.indexOf(n) !== -1) return fk + ': ' + quote(v) + ' is already bound';
      taken.push(n);
    } else if (typeof v !== 'number' && typeof v !== 'boolean') {
      return fk + ': must be a string, number or boolean (or ":name" to bind it)';
    }
  }
  return null;
}

function httpTriggerProblem(spec, f, path, allowed) {
  if (!isObject(spec)) return f + ': must be an object such as { "method": "GET" }';
  var extra = unknownKey(spec, allowed);
  if (extra !== null) return fieldOf(f, extra) + ': unknown field (allowed: ' + allowed.join(', ') + ')';
  return methodProblem(spec.method, f + '.method') || parametersProblem(spec.parameters, f + '.parameters', patternBindings(path));
}

function changesProblem(c, f) {
  if (!isObject(c)) return f + ': must be an object such as { "db": "inbox" }';
  var extra = unknownKey(c, ['db', 'selector', 'include_docs']);
  if (extra !== null) return fieldOf(f, extra) + ': unknown field (allowed: db, selector, include_docs)';
  if (typeof c.db !== 'string' || !DB_RE.test(c.db)) return f + '.db: must be a CouchDB database name (lower-case, starting with a letter)';
  if (c.selector !== undefined && !isObject(c.selector)) return f + '.selector: must be an object (a Mango selector)';
  if (c.include_docs !== undefined && typeof c.include_docs !== 'boolean') return f + '.include_docs: must be true or false';
  return null;
}

/* ms between ticks for "every" (a positive number of ms, or "30s", "1m", "2h", "1d", "500ms"), or null. */
function everyMs(v) {
  var ms = null;
  if (typeof v === 'number') ms = v;
  else if (typeof v === 'string') {
    var m = DURATION_RE.exec(v);
    if (m) ms = parseFloat(m[1]) * UNIT_MS[m[2]];
  }
  if (ms === null || !isFinite(ms)) return null;
  ms = Math.round(ms);
  return ms >= 1 ? ms : null;
}

function cronValue(s, def) {
  if (/^\d+$/.test(s)) {
    var n = parseInt(s, 10);
    return n >= def.min && n <= def.max ? n : null;
  }
  if (def.names) {
    var i = def.names.indexOf(s.toLowerCase());
    if (i !== -1) return i + def.min;
  }
  return null;
}

/* The sorted values one cron field allows, or a string saying what is wrong. */
function cronField(text, def) {
  var seen = {};
  var values = [];
  var items = text.split(',');
  for (var i = 0; i < items.length; i++) {
    var item = items[i];
    if (item === '') return 'empty list item';
    var step = 1;
    var range = item;
    var slash = item.indexOf('/');
    if (slash !== -1) {
      var st = item.slice(slash + 1);
      if (!/^\d+$/.test(st) || parseInt(st, 10) < 1) return 'step ' + quote(st) + ' must be a positive integer';
      step = parseInt(st, 10);
      range = item.slice(0, slash);
    }
    var lo;
    var hi;
    if (range === '*') {
      lo = def.min;
      hi = def.max;
    } else {
      var dash = range.indexOf('-');
      var a = dash === -1 ? range : range.slice(0, dash);
      lo = cronValue(a, def);
      if (lo === null) return quote(a) + ' is not a value from ' + def.min + ' to ' + def.max;
      if (dash === -1) {
        hi = slash === -1 ? lo : def.max;
      } else {
        var b = range.slice(dash + 1);
        hi = cronValue(b, def);
        if (hi === null) return quote(b) + ' is not a value from ' + def.min + ' to ' + def.max;
        if (lo > hi) return 'range ' + quote(range) + ' runs backwards';
      }
    }
    for (var v = lo; v <= hi; v += step) {
      var val = def.name === 'day-of-week' && v === 7 ? 0 : v;
      if (!seen[val]) { seen[val] = true; values.push(val); }
    }
  }
  values.sort(function (x, y) { return x - y; });
  return values;
}

/* [minutes, hours, days of month, months, days of week (0 = Sunday)], or a string saying what is wrong. */
function cronFields(expr) {
  if (typeof expr !== 'string') return 'must be a string of five fields';
  var trimmed = expr.replace(/^\s+|\s+$/g, '');
  var parts = trimmed === '' ? [] : trimmed.split(/\s+/);
  if (parts.length !== 5) return 'must have five fields (minute hour day-of-month month day-of-week), found ' + parts.length;
  var out = [];
  for (var i = 0; i < 5; i++) {
    var r = cronField(parts[i], CRON_DEFS[i]);
    if (typeof r === 'string') return CRON_DEFS[i].name + ' field ' + quote(parts[i]) + ': ' + r;
    out.push(r);
  }
  return out;
}

/* "UTC" or an IANA zone name; checked against the zones the engine knows where it has Intl. */
function tzProblem(tz, f) {
  if (typeof tz !== 'string' || tz.length > 64 || !TZ_RE.test(tz)) return f + ': must be "UTC" or an IANA time zone such as "Europe/Berlin"';
  if (typeof Intl !== 'undefined' && Intl.DateTimeFormat) {
    try { new Intl.DateTimeFormat('en-US', { timeZone: tz }); } catch (e) { return f + ': ' + quote(tz) + ' is not a known time zone'; }
  }
  return null;
}

function scheduleProblem(s, f) {
  if (!isObject(s)) return f + ': must be an object such as { "every": "1m" } or { "cron": "*/5 * * * *" }';
  var extra = unknownKey(s, ['every', 'cron', 'tz', 'catchup']);
  if (extra !== null) return fieldOf(f, extra) + ': unknown field (allowed: every, cron, tz, catchup)';
  if (hasOwn(s, 'every') === hasOwn(s, 'cron')) return f + ': needs exactly one of "every" or "cron"';
  if (hasOwn(s, 'catchup') && s.catchup !== 0 && s.catchup !== 1) return f + '.catchup: must be 0 (ticks missed while no runtime ran are skipped) or 1 (the last of them fires once)';
  if (hasOwn(s, 'tz')) {
    if (!hasOwn(s, 'cron')) return f + '.tz: only a "cron" schedule has a time zone ("every" counts from the epoch)';
    var tzp = tzProblem(s.tz, f + '.tz');
    if (tzp) return tzp;
  }
  if (hasOwn(s, 'every')) {
    var every = everyMs(s.every);
    if (every === null) return f + '.every: must be a positive number of ms or a duration such as "30s", "1m", "2h"';
    // A shorter interval floods the store with tick claims and the workers with messages.
    if (every < MIN_EVERY_MS) return f + '.every: must be at least 1 s (1000 ms or "1s"), got ' + quote(s.every);
    return null;
  }
  var c = cronFields(s.cron);
  return typeof c === 'string' ? f + '.cron: ' + c : null;
}

function triggerProblem(t) {
  if (t === undefined) return null;
  var i, f, r, e;
  if (Array.isArray(t)) {
    for (i = 0; i < t.length; i++) {
      f = 'trigger[' + i + ']';
      e = t[i];
      if (!isObject(e)) return f + ': must be an object with "path", "changes" or "schedule"';
      var kinds = (hasOwn(e, 'path') ? 1 : 0) + (hasOwn(e, 'changes') ? 1 : 0) + (hasOwn(e, 'schedule') ? 1 : 0);
      if (kinds !== 1) return f + ': needs exactly one of "path", "changes" or "schedule"';
      if (hasOwn(e, 'path')) {
        r = patternProblem(e.path);
        if (r) return f + '.path: ' + r;
        r = httpTriggerProblem(e, f, e.path, ['path', 'method', 'parameters']);
      } else if (hasOwn(e, 'changes')) {
        r = unknownKey(e, ['changes']);
        r = r !== null ? fieldOf(f, r) + ': unknown field beside "changes"' : changesProblem(e.changes, f + '.changes');
      } else {
        r = unknownKey(e, ['schedule']);
        r = r !== null ? fieldOf(f, r) + ': unknown field beside "schedule"' : scheduleProblem(e.schedule, f + '.schedule');
      }
      if (r) return r;
    }
    return null;
  }
  if (!isObject(t)) return 'trigger: must be an object keyed by path, or a list of triggers';
  var keys = Object.keys(t);
  for (i = 0; i < keys.length; i++) {
    var k = keys[i];
    f = fieldOf('trigger', k);
    if (k.charAt(0) === '/') {
      r = patternProblem(k);
      r = r ? f + ': ' + r : httpTriggerProblem(t[k], f, k, ['method', 'parameters']);
    } else if (k === 'changes') {
      r = changesProblem(t[k], f);
    } else if (k === 'schedule') {
      r = scheduleProblem(t[k], f);
    } else {
      r = f + ': a trigger path must start with "/" (the other keys are "changes" and "schedule")';
    }
    if (r) return r;
  }
  return null;
}

/* ms of a retry's first backoff (0 or more ms, or "500ms", "1s", "2m"; 1s when absent, at most 1h), or null. */
function backoffMs(v) {
  if (v === undefined) return 1000;
  var ms = null;
  if (typeof v === 'number') ms = v;
  else if (typeof v === 'string') {
    var m = DURATION_RE.exec(v);
    if (m) ms = parseFloat(m[1]) * UNIT_MS[m[2]];
  }
  if (ms === null || !isFinite(ms) || ms < 0 || ms > MAX_BACKOFF_MS) return null;
  return Math.round(ms);
}

function retryProblem(r, f) {
  if (!isObject(r)) return f + ': must be an object such as { "attempts": 3, "backoff": "1s" }';
  var extra = unknownKey(r, ['attempts', 'backoff']);
  if (extra !== null) return fieldOf(f, extra) + ': unknown field (allowed: attempts, backoff)';
  var n = r.attempts;
  if (typeof n !== 'number' || Math.floor(n) !== n || n < 1 || n > MAX_ATTEMPTS) return f + '.attempts: must be a whole number from 1 to ' + MAX_ATTEMPTS + ' (the first attempt included)';
  if (backoffMs(r.backoff) === null) return f + '.backoff: must be 0 or more ms, or a duration such as "500ms", "1s", "2m", at most "1h"';
  return null;
}

function workersProblem(w) {
  var i, f, r;
  if (w === undefined) return 'workers: is required: an object keyed by worker name, or a list of { "name": … }';
  if (Array.isArray(w)) {
    for (i = 0; i < w.length; i++) {
      f = 'workers[' + i + ']';
      var e = w[i];
      if (!isObject(e)) return f + ': must be an object such as { "name": "send_email", "parameters": {} }';
      var extra = unknownKey(e, ['name', 'parameters', 'arguments', 'retry', 'forward']);
      if (extra !== null) return fieldOf(f, extra) + ': unknown field (allowed: name, parameters, arguments, retry, forward)';
      r = workerNameProblem(e.name);
      if (r) return f + '.name: ' + r;
      if (hasOwn(e, 'parameters') && hasOwn(e, 'arguments')) return f + ': give "parameters" or "arguments", not both';
      var key = hasOwn(e, 'arguments') ? 'arguments' : 'parameters';
      if (e[key] !== undefined && !isObject(e[key])) return f + '.' + key + ': must be an object';
      if (e.forward !== undefined) {
        if (!Array.isArray(e.forward)) return f + '.forward: must be a list of parameter names';
        for (var j = 0; j < e.forward.length; j++) {
          if (typeof e.forward[j] !== 'string' || e.forward[j] === '') return f + '.forward[' + j + ']: must be a non-empty string';
        }
      }
      if (e.retry !== undefined) {
        r = retryProblem(e.retry, f + '.retry');
        if (r) return r;
      }
    }
    return null;
  }
  if (!isObject(w)) return 'workers: must be an object keyed by worker name, or a list of { "name": … }';
  var keys = Object.keys(w);
  for (i = 0; i < keys.length; i++) {
    f = 'workers[' + quote(keys[i]) + ']';
    r = workerNameProblem(keys[i]);
    if (r) return f + ': ' + r;
    if (!isObject(w[keys[i]])) return f + ': must be an object of arguments (use {} for none)';
  }
  return null;
}

function authProblem(a) {
  if (a === undefined || a === 'public' || a === 'user' || a === 'admin') return null;
  if (isObject(a)) {
    var extra = unknownKey(a, ['roles', 'role']);
    if (extra !== null) return fieldOf('auth', extra) + ': unknown field (allowed: roles, role)';
    if (hasOwn(a, 'roles') && hasOwn(a, 'role')) return 'auth: give "roles" or "role", not both';
    if (hasOwn(a, 'role')) {
      if (typeof a.role !== 'string' || a.role === '') return 'auth.role: must be a non-empty string';
      return null;
    }
    if (!Array.isArray(a.roles) || a.roles.length === 0) return 'auth.roles: must be a non-empty list of role names';
    for (var i = 0; i < a.roles.length; i++) {
      if (typeof a.roles[i] !== 'string' || a.roles[i] === '') return 'auth.roles[' + i + ']: must be a non-empty string';
    }
    return null;
  }
  return 'auth: must be "public", "user", "admin" or { "roles": ["<name>", …] }';
}

/* The worker names of a valid "workers" field, in order. */
function workerNames(w) {
  if (Array.isArray(w)) {
    var out = [];
    for (var i = 0; i < w.length; i++) out.push(w[i].name);
    return out;
  }
  return Object.keys(w);
}

/* "response" names the worker whose result answers the HTTP request: one of the event's own. */
function responseProblem(r, workers) {
  if (r === undefined) return null;
  var names = workerNames(workers);
  if (typeof r !== 'string' || r === '') return 'response: must name one of the event\'s workers (' + names.join(', ') + ')';
  if (names.indexOf(r) === -1) return 'response: ' + quote(r) + ' is not one of the event\'s workers (' + names.join(', ') + ')';
  return null;
}

function headerListProblem(list, f) {
  if (!Array.isArray(list)) return f + ': must be a list of header names';
  for (var i = 0; i < list.length; i++) {
    if (typeof list[i] !== 'string' || !HEADER_RE.test(list[i])) return f + '[' + i + ']: ' + quote(list[i]) + ' is not a header name';
  }
  return null;
}

/* "cors": "*" (any origin, no credentials) or { origins, credentials, headers, expose, maxAge }. */
function corsProblem(c) {
  if (c === undefined || c === '*') return null;
  if (!isObject(c)) return 'cors: must be "*" or an object such as { "origins": ["https://app.example"] }';
  var extra = unknownKey(c, ['origins', 'credentials', 'headers', 'expose', 'maxAge']);
  if (extra !== null) return fieldOf('cors', extra) + ': unknown field (allowed: origins, credentials, headers, expose, maxAge)';
  var o = c.origins;
  if (o !== '*') {
    if (!Array.isArray(o) || o.length === 0) return 'cors.origins: must be "*" or a non-empty list of origins such as "https://app.example"';
    for (var i = 0; i < o.length; i++) {
      if (typeof o[i] !== 'string' || !ORIGIN_RE.test(o[i])) return 'cors.origins[' + i + ']: ' + quote(o[i]) + ' is not an origin (scheme://host[:port], no path)';
    }
  }
  if (c.credentials !== undefined && typeof c.credentials !== 'boolean') return 'cors.credentials: must be true or false';
  if (c.credentials === true && o === '*') return 'cors.credentials: cannot be true for every origin ("*"): list the origins';
  var r = (c.headers === undefined ? null : headerListProblem(c.headers, 'cors.headers')) || (c.expose === undefined ? null : headerListProblem(c.expose, 'cors.expose'));
  if (r) return r;
  if (c.maxAge !== undefined && !(typeof c.maxAge === 'number' && Math.floor(c.maxAge) === c.maxAge && c.maxAge >= 0 && c.maxAge <= 86400)) return 'cors.maxAge: must be a whole number of seconds from 0 to 86400';
  return null;
}

/* Why an event document is not valid, or null when it is. */
function eventProblem(doc) {
  if (!isObject(doc)) return 'document: must be an object';
  if (typeof doc._id !== 'string' || doc._id === '') return '_id: must be a non-empty string';
  if (doc.disabled !== undefined && typeof doc.disabled !== 'boolean') return 'disabled: must be true or false';
  if (doc.durable !== undefined && typeof doc.durable !== 'boolean') return 'durable: must be true or false';
  return authProblem(doc.auth) || triggerProblem(doc.trigger) || workersProblem(doc.workers)
    || responseProblem(doc.response, doc.workers) || corsProblem(doc.cors);
}

/* Why an attachment name may not become a file name, or null when it may. */
function attachmentNameProblem(name) {
  if (name === '') return 'the name is empty';
  if (name.indexOf('/') !== -1 || name.indexOf('\\') !== -1) return 'contains a path separator';
  if (name.indexOf('\u0000') !== -1) return 'contains a NUL byte';
  if (name.indexOf('..') !== -1) return 'contains ".."';
  if (name.charAt(0) === '.') return 'starts with a dot';
  if (name.length > 255) return 'is longer than 255 characters';
  return null;
}

function positiveNumber(v) { return typeof v === 'number' && isFinite(v) && v > 0; }

/* Why a worker document is not valid, or null when it is. */
function workerProblem(doc) {
  if (!isObject(doc)) return 'document: must be an object';
  if (doc.type !== undefined && (typeof doc.type !== 'string' || !TYPE_RE.test(doc.type))) return 'type: must be a lower-case name such as "node", "python", "sh" or "isolate"';
  if (typeof doc.delegate !== 'string' || doc.delegate === '') return 'delegate: must name the entry attachment';
  var atts = doc._attachments;
  if (atts !== undefined) {
    if (!isObject(atts)) return '_attachments: must be an object';
    var names = Object.keys(atts);
    for (var i = 0; i < names.length; i++) {
      var bad = attachmentNameProblem(names[i]);
      if (bad) return '_attachments[' + quote(names[i]) + ']: ' + bad;
    }
    if (!hasOwn(atts, doc.delegate)) return 'delegate: no attachment named ' + quote(doc.delegate);
  }
  if (doc.arguments !== undefined && !isObject(doc.arguments)) return 'arguments: must be an object';
  if (doc.env !== undefined) {
    if (!isObject(doc.env)) return 'env: must be an object of strings';
    var envKeys = Object.keys(doc.env);
    for (var j = 0; j < envKeys.length; j++) if (typeof doc.env[envKeys[j]] !== 'string') return 'env: must be an object of strings';
  }
  var limits = ['timeout', 'memory', 'idle', 'concurrency', 'processes'];
  for (var k = 0; k < limits.length; k++) {
    if (doc[limits[k]] !== undefined && !positiveNumber(doc[limits[k]])) return limits[k] + ': must be a positive number';
  }
  if (doc.concurrency !== undefined && Math.floor(doc.concurrency) !== doc.concurrency) return 'concurrency: must be a positive integer';
  if (doc.processes !== undefined && Math.floor(doc.processes) !== doc.processes) return 'processes: must be a positive integer';
  if (doc.queue !== undefined && !(typeof doc.queue === 'number' && doc.queue >= 0 && Math.floor(doc.queue) === doc.queue)) return 'queue: must be a non-negative integer';
  if (doc.isolation !== undefined && doc.isolation !== 'thread' && doc.isolation !== 'process') return 'isolation: must be "thread" or "process"';
  if (doc.couch !== undefined && typeof doc.couch !== 'boolean') return 'couch: must be true or false';
  if (doc.ack !== undefined && typeof doc.ack !== 'boolean') return 'ack: must be true or false (true: the worker acknowledges every message with a result or done line)';
  if (doc.secrets !== undefined) {
    if (!Array.isArray(doc.secrets)) return 'secrets: must be a list of secret names such as ["MAIL_TOKEN"]';
    for (var si = 0; si < doc.secrets.length; si++) {
      if (typeof doc.secrets[si] !== 'string' || !SECRET_RE.test(doc.secrets[si])) return 'secrets[' + si + ']: must be a secret name (letters, digits and "_", not starting with a digit)';
      if (doc.secrets.indexOf(doc.secrets[si]) !== si) return 'secrets[' + si + ']: ' + quote(doc.secrets[si]) + ' is named twice';
    }
  }
  return null;
}
`;

export type CronFields = [number[], number[], number[], number[], number[]];

export interface Rules {
  eventProblem(doc: unknown): string | null;
  workerProblem(doc: unknown): string | null;
  everyMs(v: unknown): number | null;
  /** a retry's first backoff in ms (1000 when absent), or null when not valid. */
  backoffMs(v: unknown): number | null;
  cronFields(expr: unknown): CronFields | string;
  patternBindings(path: string): string[];
  /** why an attachment name may not become a file name, or null. */
  attachmentNameProblem(name: string): string | null;
}

let compiled: Rules | undefined;

/** The rules compiled once for node; the same text the validate functions embed. */
export function compiledRules(): Rules {
  compiled ??= new Function(
    `${kRulesSource}\nreturn { eventProblem: eventProblem, workerProblem: workerProblem, everyMs: everyMs, backoffMs: backoffMs, cronFields: cronFields, patternBindings: patternBindings, attachmentNameProblem: attachmentNameProblem };`,
  )() as Rules;
  return compiled;
}
