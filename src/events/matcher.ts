/**
 * Which events an HTTP message fires. Enabled events' HTTP triggers live in a segment tree
 * (literal children, one shared `:param` child, routes ending there or with `/*`), so a lookup
 * costs the path's length and the routes that match, not the number of events loaded. Path
 * semantics (bindings, wildcard tails, trailing "/", methods): docs/events.md.
 */
import type { EventDef, EventMatch, HttpTrigger, MatchResult } from './model.ts';

const hasOwn = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

interface Route {
  event: EventDef;
  trigger: HttpTrigger;
  /** position of the trigger in event.triggers: the earliest matching one wins. */
  index: number;
  /** null: any method. */
  methods: readonly string[] | null;
  /** each `:name` of the pattern: its segment index and binding name. */
  pathParams: ReadonlyArray<{ readonly at: number; readonly name: string }>;
  /** segment index where a trailing `*` starts, or -1. */
  wildcardAt: number;
  /** literal trigger parameters: the message parameter and the value it must have, as a string. */
  literals: ReadonlyArray<{ readonly param: string; readonly value: string }>;
  /** bound trigger parameters: the message parameter and the binding name. */
  binds: ReadonlyArray<{ readonly param: string; readonly name: string }>;
  node: Node;
}

class Node {
  literal: Map<string, Node> | null = null;
  param: Node | null = null;
  exact: Route[] = [];
  wildcard: Route[] = [];
  /** key: the literal segment leading here, null for a `:param` child (and the root). */
  constructor(readonly parent: Node | null, readonly key: string | null) {}

  isEmpty(): boolean {
    return this.exact.length === 0 && this.wildcard.length === 0 && this.param === null && (this.literal === null || this.literal.size === 0);
  }
}

const kNoSegments: string[] = [];
const kNoMatch: MatchResult = Object.freeze({ kind: 'none' });

function patternSegments(path: string): string[] {
  return path === '/' ? [] : path.slice(1).split('/');
}

/**
 * `path.split('/')`, by finding the slashes and slicing: cheaper than split for the short paths
 * triggers have (docs/benchmarks.md).
 */
function splitPath(path: string): string[] {
  const out: string[] = [];
  let from = 0;
  for (let at = path.indexOf('/'); at !== -1; at = path.indexOf('/', from)) {
    out.push(path.slice(from, at));
    from = at + 1;
  }
  out.push(path.slice(from));
  return out;
}

/** A bound message value as the string a binding holds; absent or null does not bind. */
function bindable(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

export class EventMatcher {
  private readonly root = new Node(null, null);
  private readonly events = new Map<string, EventDef>();
  private readonly routesById = new Map<string, Route[]>();
  /** candidates of the lookup in progress, the first `count` slots; reused so a lookup allocates little. */
  private readonly candidates: Route[] = [];
  private count = 0;
  private segments: string[] = kNoSegments;
  private segmentCount = 0;

  get size(): number {
    return this.events.size;
  }

  get(id: string): EventDef | undefined {
    return this.events.get(id);
  }

  /** Every event held, enabled or not. */
  all(): IterableIterator<EventDef> {
    return this.events.values();
  }

  /** Adds an event, or replaces every route of the one with the same id. */
  upsert(event: EventDef): void {
    this.remove(event.id);
    this.events.set(event.id, event);
    if (event.disabled) return;
    const routes: Route[] = [];
    event.triggers.forEach((trigger, index) => {
      if (trigger.kind === 'http') routes.push(this.insert(event, trigger, index));
    });
    if (routes.length > 0) this.routesById.set(event.id, routes);
  }

  remove(id: string): void {
    this.events.delete(id);
    const routes = this.routesById.get(id);
    if (!routes) return;
    this.routesById.delete(id);
    for (const route of routes) {
      const list = route.wildcardAt >= 0 ? route.node.wildcard : route.node.exact;
      const at = list.indexOf(route);
      if (at >= 0) list.splice(at, 1);
      this.prune(route.node);
    }
  }

  clear(): void {
    for (const id of [...this.events.keys()]) this.remove(id);
  }

  /** Gathers the routes whose pattern fits `path` into `candidates`; returns the first segment's index. */
  private collectFor(path: string): number {
    const segments = splitPath(path);
    // split gives a leading "" for "/a"; a path without "/" is read as if it had one.
    const start = segments[0] === '' ? 1 : 0;
    let segmentCount = segments.length;
    if (segmentCount > start && segments[segmentCount - 1] === '') segmentCount--;
    this.segments = segments;
    this.segmentCount = segmentCount;
    this.count = 0;
    this.collect(this.root, start);
    return start;
  }

  match(method: string, path: string, params: Record<string, unknown>): MatchResult {
    const start = this.collectFor(path);
    const candidates = this.candidates;
    const count = this.count;
    if (count === 0) {
      this.segments = kNoSegments;
      return kNoMatch;
    }

    const upper = method.toUpperCase();
    let matches: EventMatch[] | null = null;
    let methodAllowed = false;
    for (let c = 0; c < count; c++) {
      const route = candidates[c]!;
      if (route.methods !== null && !route.methods.includes(upper)) continue;
      methodAllowed = true;
      if (!this.parametersMatch(route, params)) continue;
      matches ??= [];
      let found = -1;
      for (let k = 0; k < matches.length; k++) if (matches[k]!.event === route.event) found = k;
      if (found >= 0 && matches[found]!.event.triggers.indexOf(matches[found]!.trigger) <= route.index) continue;
      const match: EventMatch = { event: route.event, trigger: route.trigger, bindings: this.bind(route, params, start) };
      if (found >= 0) matches[found] = match;
      else matches.push(match);
    }
    let result: MatchResult;
    if (matches !== null) result = { kind: 'match', matches };
    else if (methodAllowed) result = kNoMatch;
    else {
      // Every candidate refused the method, so each has a method list.
      const allowed = new Set<string>();
      for (let c = 0; c < count; c++) for (const m of candidates[c]!.methods!) allowed.add(m);
      result = { kind: 'method', allowed: [...allowed].sort() };
    }
    // Drop the references so removed events are not kept alive by the scratch array
    // (a loop: for the one or two candidates of a lookup, cheaper than calling fill).
    for (let c = 0; c < count; c++) candidates[c] = undefined as unknown as Route;
    this.segments = kNoSegments;
    return result;
  }

  /**
   * Every enabled event's HTTP trigger whose pattern matches the path, whatever its method and
   * parameters: what an `OPTIONS` request asks about (see runtime/options.ts).
   */
  routesFor(path: string): Array<{ event: EventDef; trigger: HttpTrigger }> {
    this.collectFor(path);
    const out: Array<{ event: EventDef; trigger: HttpTrigger }> = [];
    for (let c = 0; c < this.count; c++) {
      const route = this.candidates[c]!;
      out.push({ event: route.event, trigger: route.trigger });
      this.candidates[c] = undefined as unknown as Route;
    }
    this.segments = kNoSegments;
    return out;
  }

  private collect(node: Node, i: number): void {
    const candidates = this.candidates;
    const wild = node.wildcard;
    for (let k = 0; k < wild.length; k++) candidates[this.count++] = wild[k]!;
    if (i === this.segmentCount) {
      const exact = node.exact;
      for (let k = 0; k < exact.length; k++) candidates[this.count++] = exact[k]!;
      return;
    }
    const seg = this.segments[i]!;
    const lit = node.literal?.get(seg);
    if (lit) this.collect(lit, i + 1);
    if (node.param && seg !== '') this.collect(node.param, i + 1);
  }

  private parametersMatch(route: Route, params: Record<string, unknown>): boolean {
    const literals = route.literals;
    for (let k = 0; k < literals.length; k++) {
      const { param, value } = literals[k]!;
      if (!hasOwn(params, param)) return false;
      const v = params[param];
      if (typeof v === 'string' ? v !== value : (typeof v !== 'number' && typeof v !== 'boolean') || String(v) !== value) return false;
    }
    const binds = route.binds;
    for (let k = 0; k < binds.length; k++) {
      const { param } = binds[k]!;
      if (!hasOwn(params, param) || bindable(params[param]) === undefined) return false;
    }
    return true;
  }

  private bind(route: Route, params: Record<string, unknown>, start: number): Record<string, unknown> {
    const bindings: Record<string, unknown> = {};
    const segments = this.segments;
    for (const p of route.pathParams) bindings[p.name] = segments[start + p.at]!;
    if (route.wildcardAt >= 0) {
      const from = start + route.wildcardAt;
      bindings['*'] = from < this.segmentCount ? segments.slice(from).join('/') : '';
    }
    // a parameter binds its value as given (a typed query value stays typed); path segments are text
    for (const b of route.binds) bindings[b.name] = params[b.param];
    return bindings;
  }

  private insert(event: EventDef, trigger: HttpTrigger, index: number): Route {
    const segs = patternSegments(trigger.path);
    const wildcardAt = segs.length > 0 && segs[segs.length - 1] === '*' ? segs.length - 1 : -1;
    const pathParams: Array<{ at: number; name: string }> = [];
    let node = this.root;
    const depth = wildcardAt >= 0 ? wildcardAt : segs.length;
    for (let i = 0; i < depth; i++) {
      const seg = segs[i]!;
      if (seg.startsWith(':')) {
        pathParams.push({ at: i, name: seg.slice(1) });
        node.param ??= new Node(node, null);
        node = node.param;
      } else {
        node.literal ??= new Map();
        let next = node.literal.get(seg);
        if (!next) node.literal.set(seg, (next = new Node(node, seg)));
        node = next;
      }
    }
    const literals: Array<{ param: string; value: string }> = [];
    const binds: Array<{ param: string; name: string }> = [];
    for (const [param, value] of Object.entries(trigger.parameters)) {
      if (typeof value === 'string' && value.startsWith(':')) binds.push({ param, name: value.slice(1) });
      else literals.push({ param, value: String(value) });
    }
    const route: Route = {
      event, trigger, index,
      methods: trigger.methods === '*' ? null : trigger.methods,
      pathParams, wildcardAt, literals, binds, node,
    };
    (wildcardAt >= 0 ? node.wildcard : node.exact).push(route);
    return route;
  }

  /** Drops nodes left without routes or children, so edits and removals leave no dead branches. */
  private prune(node: Node): void {
    let n: Node | null = node;
    while (n && n.parent && n.isEmpty()) {
      const parent: Node = n.parent;
      if (n.key === null) parent.param = null;
      else parent.literal?.delete(n.key);
      n = parent;
    }
  }
}

