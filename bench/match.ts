/**
 * How fast the matcher answers with 10, 1,000 and 10,000 events loaded.
 *
 * The events are a realistic mix: literal paths, `:param` segments, trailing wildcards,
 * method lists and literal/bound trigger parameters, spread over a few hundred first
 * segments. Lookups are random: most hit an existing event (any of its shapes), some
 * miss (unknown paths, wrong methods, mismatched parameters). Each round runs for a
 * fixed number of lookups; the median of several rounds is reported.
 *
 *   npm run bench:match            (ROUNDS, LOOKUPS to change the effort)
 */
import { EventMatcher } from '../src/events/matcher.ts';
import { parseEventDoc } from '../src/events/parse.ts';

const kSizes = [10, 1_000, 10_000];
const kRounds = Number(process.env.ROUNDS ?? 5);
const kLookups = Number(process.env.LOOKUPS ?? 200_000);

let seed = 42;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;

interface Lookup { method: string; path: string; params: Record<string, unknown> }

function eventDoc(i: number): { doc: Record<string, unknown>; hit: Lookup } {
  const area = `area${i % 300}`;
  const shape = i % 5;
  const workers = { [`w${i % 50}`]: { n: i } };
  switch (shape) {
    case 0:
      return { doc: { _id: `e${i}`, trigger: { [`/${area}/ping${i}`]: { method: 'GET' } }, workers }, hit: { method: 'GET', path: `/${area}/ping${i}`, params: {} } };
    case 1:
      return { doc: { _id: `e${i}`, trigger: { [`/${area}/doc${i}/:db/:docid`]: { method: ['GET', 'PUT'] } }, workers }, hit: { method: 'PUT', path: `/${area}/doc${i}/inbox/d${i}`, params: {} } };
    case 2:
      return { doc: { _id: `e${i}`, trigger: { [`/${area}/files${i}/*`]: {} }, workers }, hit: { method: 'GET', path: `/${area}/files${i}/a/b/${i}.txt`, params: {} } };
    case 3:
      return { doc: { _id: `e${i}`, trigger: [{ path: `/${area}/paint${i}`, method: 'POST', parameters: { color: ':color', coats: 2 } }], workers: [{ name: 'painter', parameters: { c: ':color' } }] }, hit: { method: 'POST', path: `/${area}/paint${i}`, params: { color: 'red', coats: '2' } } };
    default:
      return { doc: { _id: `e${i}`, trigger: { [`/${area}/item${i}/:id`]: { method: ['GET', 'POST', 'DELETE'], parameters: { kind: 'note' } } }, workers }, hit: { method: 'DELETE', path: `/${area}/item${i}/x${i}`, params: { kind: 'note' } } };
  }
}

function setup(size: number): { matcher: EventMatcher; lookups: Lookup[] } {
  const matcher = new EventMatcher();
  const hits: Lookup[] = [];
  for (let i = 0; i < size; i++) {
    const { doc, hit } = eventDoc(i);
    const r = parseEventDoc(doc);
    if (!r.ok) throw new Error(`bench event ${i} invalid: ${r.reason}`);
    matcher.upsert(r.event);
    hits.push(hit);
  }
  const lookups: Lookup[] = [];
  for (let k = 0; k < 4096; k++) {
    const r = rand();
    const h = pick(hits);
    if (r < 0.7) lookups.push(h);
    else if (r < 0.8) lookups.push({ method: 'GET', path: `/area${Math.floor(rand() * 300)}/nothing/${k}`, params: {} });
    else if (r < 0.9) lookups.push({ method: 'PATCH', path: h.path, params: h.params });
    else lookups.push({ method: h.method, path: h.path, params: { color: 'blue', kind: 'task' } });
  }
  return { matcher, lookups };
}

function round(matcher: EventMatcher, lookups: Lookup[]): { perSec: number; fired: number } {
  let fired = 0;
  const mask = lookups.length - 1;
  const t0 = process.hrtime.bigint();
  for (let n = 0; n < kLookups; n++) {
    const l = lookups[n & mask]!;
    const r = matcher.match(l.method, l.path, l.params);
    if (r.kind === 'match') fired += r.matches.length;
  }
  const ns = Number(process.hrtime.bigint() - t0);
  return { perSec: kLookups / (ns / 1e9), fired };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const results = kSizes.map((size) => {
  const { matcher, lookups } = setup(size);
  round(matcher, lookups); // warm-up, not counted
  const rounds = Array.from({ length: kRounds }, () => round(matcher, lookups));
  const perSec = median(rounds.map((r) => r.perSec));
  return { events: size, lookups: kLookups, rounds: kRounds, matchesPerSec: Math.round(perSec), nsPerMatch: Math.round(1e9 / perSec), firedPerRound: rounds[0]!.fired };
});

console.log(JSON.stringify({ bench: 'match', node: process.version, results }, null, 2));
console.log('\n| events loaded | matches/s (median) | ns/match |\n|---:|---:|---:|');
for (const r of results) console.log(`| ${r.events.toLocaleString('en')} | ${r.matchesPerSec.toLocaleString('en')} | ${r.nsPerMatch} |`);
