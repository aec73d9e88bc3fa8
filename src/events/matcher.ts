/**
 * Which events an HTTP message fires.
 *
 * Enabled events' HTTP triggers live in a segment tree: each node has a map of literal
 * children, one `:param` child shared by every pattern with a binding at that depth, and
 * the routes that end there (exactly, or with a trailing `/*`). A lookup walks the path's
 * segments once, so its cost follows the path's length and the routes that actually
 * match, not the number of events loaded.
 *
 * Path semantics:
 * - `:name` binds one non-empty segment;
 * - a trailing `/*` binds the rest of the path as `*`, without the leading "/", and may be
 *   empty: `/files/*` fires for `/files/a/b.txt` (`*` = "a/b.txt") and for `/files` (`*` = "");
 * - one trailing "/" on the message's path is ignored (`/send_email/` is `/send_email`),
 *   except inside a wildcard tail, which keeps it;
 * - methods compare exactly (upper-case); `HEAD` is not implied by `GET`.
 * Every event whose trigger matches fires, once, with its first matching trigger in
 * document order. Literal trigger parameters compare as strings (`?n=5` equals 5).
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
  /** [segment index, binding name] for each `:name`. */
  pathParams: ReadonlyArray<readonly [number, string]>;
  /** segment index where a trailing `*` starts, or -1. */
  wildcardAt: number;
  /** [message parameter, literal as string]. */
  literals: ReadonlyArray<readonly [string, string]>;
  /** [message parameter, binding name]. */
  binds: ReadonlyArray<readonly [string, string]>;
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

const EMPTY: string[] = [];
const NONE: MatchResult = Object.freeze({ kind: 'none' });

function patternSegments(path: string): string[] {
  return path === '/' ? [] : path.slice(1).split('/');
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
  /** candidates of the lookup in progress; reused so a lookup allocates little. */
  private readonly candidates: Route[] = [];
  private segments: string[] = EMPTY;
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

  match(method: string, path: string, params: Record<string, unknown>): MatchResult {
    const segments = path.split('/');
    // split gives a leading "" for "/a"; a path without "/" is read as if it had one.
    const start = segments[0] === '' ? 1 : 0;
    let count = segments.length;
    if (count > start && segments[count - 1] === '') count--;
    this.segments = segments;
    this.segmentCount = count;
    const candidates = this.candidates;
    candidates.length = 0;
    this.collect(this.root, start);
    if (candidates.length === 0) {
      this.segments = EMPTY;
      return NONE;
    }

    const upper = method.toUpperCase();
    let matches: EventMatch[] | null = null;
    let methodAllowed = false;
    for (const route of candidates) {
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
    else if (methodAllowed) result = { kind: 'none' };
    else {
      // Every candidate refused the method, so each has a method list.
      const allowed = new Set<string>();
      for (const route of candidates) for (const m of route.methods!) allowed.add(m);
      result = { kind: 'method', allowed: [...allowed].sort() };
    }
    candidates.length = 0;
    this.segments = EMPTY;
    return result;
  }

  private collect(node: Node, i: number): void {
    const candidates = this.candidates;
    for (const r of node.wildcard) candidates.push(r);
    if (i === this.segmentCount) {
      for (const r of node.exact) candidates.push(r);
      return;
    }
    const seg = this.segments[i]!;
    const lit = node.literal?.get(seg);
    if (lit) this.collect(lit, i + 1);
    if (node.param && seg !== '') this.collect(node.param, i + 1);
  }

  private parametersMatch(route: Route, params: Record<string, unknown>): boolean {
    for (const [name, literal] of route.literals) {
      if (!hasOwn(params, name)) return false;
      const v = params[name];
      if (typeof v === 'string' ? v !== literal : (typeof v !== 'number' && typeof v !== 'boolean') || String(v) !== literal) return false;
    }
    for (const [name] of route.binds) {
      if (!hasOwn(params, name) || bindable(params[name]) === undefined) return false;
    }
    return true;
  }

  private bind(route: Route, params: Record<string, unknown>, start: number): Record<string, string> {
    const bindings: Record<string, string> = {};
    const segments = this.segments;
    for (const [i, name] of route.pathParams) bindings[name] = segments[start + i]!;
    if (route.wildcardAt >= 0) {
      const from = start + route.wildcardAt;
      bindings['*'] = from < this.segmentCount ? segments.slice(from).join('/') : '';
    }
    for (const [param, name] of route.binds) bindings[name] = bindable(params[param])!;
    return bindings;
  }

  private insert(event: EventDef, trigger: HttpTrigger, index: number): Route {
    const segs = patternSegments(trigger.path);
    const wildcardAt = segs.length > 0 && segs[segs.length - 1] === '*' ? segs.length - 1 : -1;
    const pathParams: Array<[number, string]> = [];
    let node = this.root;
    const depth = wildcardAt >= 0 ? wildcardAt : segs.length;
    for (let i = 0; i < depth; i++) {
      const seg = segs[i]!;
      if (seg.startsWith(':')) {
        pathParams.push([i, seg.slice(1)]);
        node.param ??= new Node(node, null);
        node = node.param;
      } else {
        node.literal ??= new Map();
        let next = node.literal.get(seg);
        if (!next) node.literal.set(seg, (next = new Node(node, seg)));
        node = next;
      }
    }
    const literals: Array<[string, string]> = [];
    const binds: Array<[string, string]> = [];
    for (const [name, value] of Object.entries(trigger.parameters)) {
      if (typeof value === 'string' && value.startsWith(':')) binds.push([name, value.slice(1)]);
      else literals.push([name, String(value)]);
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

