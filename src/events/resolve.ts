/**
 * What a worker receives for one match (DESIGN.md "What a worker receives"). `arguments`: the
 * worker's defaults, each key replaced whole by the event's; a string that is exactly a bound
 * name (`":db"`, `"*"`) becomes the bound value at any depth (a placeholder without binding stays,
 * worker defaults are not substituted). `parameters`: the message's own, then the bindings, then
 * the arguments, so a request can add parameters but never override a configured one.
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
