/**
 * What a worker receives for one match (DESIGN.md "What a worker receives").
 *
 * `arguments` = the worker document's defaults, each key replaced by the event's argument
 * of the same name (shallow: an object argument replaces the default object whole).
 * In the event's arguments, a string that is exactly a bound name — `":db"` for a binding
 * `db`, `"*"` for the wildcard tail — becomes the bound value, at any depth inside objects
 * and arrays, because a user writing `{ "target": { "db": ":db" } }` expects it filled in.
 * A placeholder with no such binding stays as written. Worker defaults are not substituted:
 * a worker document does not know which event will run it.
 *
 * `parameters` = the message's own parameters (query, body fields), then the path and
 * parameter bindings (the route's reading of the path wins over a query field of the same
 * name), then the arguments: a request can add parameters but never override a configured one.
 */

type Obj = Record<string, unknown>;

export function resolveArguments(workerDefaults: Obj | undefined, eventArgs: Obj | undefined, bindings: Record<string, unknown>): Obj {
  const out: Obj = { ...(workerDefaults ?? {}) };
  if (eventArgs) {
    for (const key of Object.keys(eventArgs)) define(out, key, substitute(eventArgs[key], bindings, 0));
  }
  return out;
}

export function buildParameters(messageParams: Obj | undefined, bindings: Record<string, unknown>, args: Obj): Obj {
  return { ...(messageParams ?? {}), ...bindings, ...args };
}

/** Deeper than any argument a user writes; stops a pathological document from recursing without end. */
const kMaxDepth = 64;

function substitute(value: unknown, bindings: Record<string, unknown>, depth: number): unknown {
  if (typeof value === 'string') { const v = placeholder(value, bindings); return v === undefined ? value : v; }
  if (depth >= kMaxDepth || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => substitute(v, bindings, depth + 1));
  const out: Obj = {};
  for (const key of Object.keys(value)) define(out, key, substitute((value as Obj)[key], bindings, depth + 1));
  return out;
}

function placeholder(s: string, bindings: Record<string, unknown>): unknown {
  if (s === '*') return Object.prototype.hasOwnProperty.call(bindings, '*') ? bindings['*'] : undefined;
  if (s.length > 1 && s.charCodeAt(0) === 58 /* ':' */) {
    const name = s.slice(1);
    return Object.prototype.hasOwnProperty.call(bindings, name) ? bindings[name] : undefined;
  }
  return undefined;
}

/** An own data property even for "__proto__", so a document's keys never touch a prototype. */
function define(o: Obj, key: string, value: unknown): void {
  // Plain assignment is the fast path (this runs for every argument of every trigger).
  if (key === '__proto__') Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
  else o[key] = value;
}
