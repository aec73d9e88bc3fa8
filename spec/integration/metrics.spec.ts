/**
 * `/_lively/metrics` parsed by a strict reader of the Prometheus text format (0.0.4), written
 * here so the spec does not trust the code it checks: names, labels and escapes, HELP/TYPE,
 * families kept together, histogram buckets rising to `+Inf` == `_count`. The counts must
 * equal what the spec triggered through real worker threads.
 */
import { expect } from 'chai';
import { request } from 'undici';
import type { Runtime } from '../../src/runtime.ts';
import { ActivationMetrics, kDurationBuckets, renderMetrics, type MetricSources } from '../../src/core/metrics.ts';
import type { ActivationRecord } from '../../src/activations/record.ts';
import { adminHeaders } from '../support/couch.ts';
import { eventually, startRuntime } from '../support/runtime.ts';

interface Sample { name: string; labels: Record<string, string>; value: number }
interface Family { name: string; type: string; help?: string; samples: Sample[] }

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function parseValue(s: string, where: string): number {
  if (s === '+Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (s === 'NaN') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) throw new Error(`${where}: bad value ${JSON.stringify(s)}`);
  return Number(s);
}

/** `{a="x",b="y\"z"}` → labels; throws on anything the format does not allow. */
function parseLabels(text: string, where: string): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  let i = 1;
  for (;;) {
    if (text[i] === '}') return { labels, rest: text.slice(i + 1) };
    const eq = text.indexOf('=', i);
    if (eq === -1) throw new Error(`${where}: label without "="`);
    const key = text.slice(i, eq);
    if (!LABEL.test(key) || key.startsWith('__')) throw new Error(`${where}: bad label name ${JSON.stringify(key)}`);
    if (key in labels) throw new Error(`${where}: label ${key} twice`);
    if (text[eq + 1] !== '"') throw new Error(`${where}: label value not quoted`);
    let v = '';
    let j = eq + 2;
    for (;; j++) {
      const c = text[j];
      if (c === undefined) throw new Error(`${where}: unterminated label value`);
      if (c === '"') break;
      if (c === '\n') throw new Error(`${where}: raw line feed in a label value`);
      if (c === '\\') {
        const n = text[++j];
        if (n === '\\') v += '\\';
        else if (n === '"') v += '"';
        else if (n === 'n') v += '\n';
        else throw new Error(`${where}: bad escape \\${n}`);
      } else v += c;
    }
    labels[key] = v;
    i = j + 1;
    if (text[i] === ',') i++;
    else if (text[i] !== '}') throw new Error(`${where}: expected "," or "}" after a label`);
  }
}

function familyOf(sample: string, families: Map<string, Family>): Family | undefined {
  if (families.has(sample)) return families.get(sample);
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (sample.endsWith(suffix)) {
      const f = families.get(sample.slice(0, -suffix.length));
      if (f && f.type === 'histogram') return f;
    }
  }
  return undefined;
}

/** A strict reader of the text exposition format 0.0.4, plus the histogram rules. */
function parseExposition(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a line feed');
  const families = new Map<string, Family>();
  const finished = new Set<string>();
  let current: Family | undefined;
  const seen = new Set<string>();
  text.slice(0, -1).split('\n').forEach((line, n) => {
    const where = `line ${n + 1}`;
    if (line === '') throw new Error(`${where}: empty line`);
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) return; // a plain comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      if (!NAME.test(name)) throw new Error(`${where}: bad metric name ${name}`);
      if (finished.has(name)) throw new Error(`${where}: ${name} appears again after other metrics`);
      let f = families.get(name);
      if (!f) {
        if (current) finished.add(current.name);
        f = { name, type: 'untyped', samples: [] };
        families.set(name, f);
        current = f;
      }
      if (kind === 'TYPE') {
        if (f.type !== 'untyped' || f.samples.length) throw new Error(`${where}: TYPE of ${name} repeated or after its samples`);
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) throw new Error(`${where}: bad type ${rest}`);
        f.type = rest;
      } else {
        if (f.help !== undefined) throw new Error(`${where}: HELP of ${name} twice`);
        if (/\\(?![\\n])/.test(rest)) throw new Error(`${where}: bad escape in HELP`);
        f.help = rest;
      }
      return;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(.*)$/.exec(line);
    if (!m) throw new Error(`${where}: not a sample: ${line}`);
    const name = m[1]!;
    let rest = m[2]!;
    let labels: Record<string, string> = {};
    if (rest.startsWith('{')) ({ labels, rest } = parseLabels(rest, where));
    const parts = rest.split(' ');
    if (parts[0] !== '' || parts.length < 2 || parts.length > 3) throw new Error(`${where}: expected " value [timestamp]", got ${JSON.stringify(rest)}`);
    const value = parseValue(parts[1]!, where);
    const f = familyOf(name, families);
    if (!f) throw new Error(`${where}: sample ${name} has no TYPE`);
    if (f !== current) throw new Error(`${where}: sample of ${f.name} outside its family's block`);
    const key = name + JSON.stringify(Object.entries(labels).sort());
    if (seen.has(key)) throw new Error(`${where}: duplicate sample ${key}`);
    seen.add(key);
    if (f.type === 'counter' && !(value >= 0)) throw new Error(`${where}: counter ${name} is ${value}`);
    f.samples.push({ name, labels, value });
  });
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

function checkHistogram(f: Family): void {
  const series = new Map<string, { buckets: Array<[number, number]>; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const h = series.get(key) ?? { buckets: [] };
    series.set(key, h);
    if (s.name === `${f.name}_bucket`) {
      if (le === undefined) throw new Error(`${f.name}: bucket without le`);
      h.buckets.push([parseValue(le, f.name), s.value]);
    } else if (s.name === `${f.name}_sum`) h.sum = s.value;
    else if (s.name === `${f.name}_count`) h.count = s.value;
    else throw new Error(`${f.name}: unexpected sample ${s.name}`);
  }
  for (const [key, h] of series) {
    if (h.sum === undefined || h.count === undefined) throw new Error(`${f.name}${key}: _sum or _count missing`);
    for (let i = 1; i < h.buckets.length; i++) {
      if (!(h.buckets[i]![0] > h.buckets[i - 1]![0])) throw new Error(`${f.name}${key}: le not increasing`);
      if (h.buckets[i]![1] < h.buckets[i - 1]![1]) throw new Error(`${f.name}${key}: bucket counts fall`);
    }
    const last = h.buckets[h.buckets.length - 1];
    if (!last || last[0] !== Infinity) throw new Error(`${f.name}${key}: no +Inf bucket`);
    if (last[1] !== h.count) throw new Error(`${f.name}${key}: +Inf bucket ${last[1]} != _count ${h.count}`);
  }
}

function value(families: Map<string, Family>, sample: string, labels: Record<string, string> = {}): number | undefined {
  const f = familyOf(sample, families);
  const s = f?.samples.find((x) => x.name === sample && Object.keys(labels).length === Object.keys(x.labels).length && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s?.value;
}

const att = (code: string) => ({ content_type: 'application/javascript', data: Buffer.from(code).toString('base64') });

describe('metrics: /_lively/metrics in the Prometheus text format', function () {
  this.timeout(30_000);
  let rt: Runtime;
  const odd = 'odd "quoted\\ id';

  before(async () => {
    rt = await startRuntime();
    await rt.db.workers.bulk({ docs: [
      { _id: 'ok_w', type: 'node', delegate: 'main.js', _attachments: { 'main.js': att('module.exports = async (msg) => ({ n: msg.parameters.n ?? null });') } },
      { _id: 'fail_w', type: 'node', delegate: 'main.js', _attachments: { 'main.js': att('module.exports = async () => { throw new Error("no"); };') } },
    ] });
    await rt.db.events.bulk({ docs: [
      { _id: 'm_ok', trigger: { '/m/ok': {} }, workers: { ok_w: {} } },
      { _id: 'm_fail', trigger: { '/m/fail': {} }, workers: { fail_w: {} } },
      { _id: 'm_both', trigger: { '/m/both': {} }, workers: { ok_w: {}, fail_w: {} } },
      { _id: odd, workers: { ok_w: {} } },
    ] });
    await eventually(() => rt.catalog.matcher.size >= 4, 5_000, 'events loaded');
  });
  after(() => rt?.stop());

  async function scrape(): Promise<Map<string, Family>> {
    const res = await request(`${rt.url}/_lively/metrics`, { headers: adminHeaders() });
    expect(res.statusCode).to.equal(200);
    expect(res.headers['content-type']).to.equal('text/plain; version=0.0.4; charset=utf-8');
    return parseExposition(await res.body.text());
  }

  it('parses strictly, and counts per event, status and worker exactly what was triggered', async () => {
    const plan: Array<[string, number]> = [['/m/ok', 5], ['/m/fail', 3], ['/m/both', 2], [`/${encodeURIComponent(odd)}`, 1]];
    for (const [path, n] of plan) {
      for (let i = 0; i < n; i++) {
        const res = await request(`${rt.url}/_events${path}?wait=true&n=${i}`);
        await res.body.dump();
        expect(res.statusCode, path).to.equal(200);
      }
    }
    const m = await scrape();
    expect(m.get('livelycouch_triggers_total')!.type).to.equal('counter');
    expect(m.get('livelycouch_worker_duration_seconds')!.type).to.equal('histogram');
    const t = (event: string, status: string) => value(m, 'livelycouch_triggers_total', { event, status });
    expect([t('m_ok', 'ok'), t('m_ok', 'error'), t('m_ok', 'timeout')]).to.deep.equal([5, 0, 0]);
    expect([t('m_fail', 'ok'), t('m_fail', 'error')]).to.deep.equal([0, 3]);
    // An activation counts as its worst worker.
    expect([t('m_both', 'ok'), t('m_both', 'error')]).to.deep.equal([0, 2]);
    // Label values come back through their escapes.
    expect(t(odd, 'ok')).to.equal(1);

    expect(value(m, 'livelycouch_worker_duration_seconds_count', { worker: 'ok_w' })).to.equal(5 + 2 + 1);
    expect(value(m, 'livelycouch_worker_duration_seconds_count', { worker: 'fail_w' })).to.equal(3 + 2);
    expect(value(m, 'livelycouch_worker_runs_total', { worker: 'ok_w', status: 'ok' })).to.equal(8);
    expect(value(m, 'livelycouch_worker_runs_total', { worker: 'fail_w', status: 'error' })).to.equal(5);
    const les = m.get('livelycouch_worker_duration_seconds')!.samples.filter((s) => s.name.endsWith('_bucket') && s.labels.worker === 'ok_w').map((s) => s.labels.le);
    expect(les).to.deep.equal([...kDurationBuckets.map(String), '+Inf']);
    expect(value(m, 'livelycouch_worker_duration_seconds_sum', { worker: 'ok_w' })).to.be.at.least(0);

    expect(value(m, 'livelycouch_activations_fired_total')).to.equal(11);
    expect(value(m, 'livelycouch_worker_outcomes_total', { status: 'error' })).to.equal(5);
    // Pool and queue gauges of the thread dispatcher that ran these workers.
    const util = value(m, 'livelycouch_dispatcher_utilization', { dispatcher: 'thread' });
    expect(util).to.be.within(0, 1);
    expect(value(m, 'livelycouch_dispatcher_queued', { dispatcher: 'thread' })).to.equal(0);
    expect(value(m, 'livelycouch_messages_waiting')).to.equal(0);
  });

  it('a scrape is refused without admin credentials', async () => {
    const res = await request(`${rt.url}/_lively/metrics`);
    await res.body.dump();
    expect(res.statusCode).to.equal(401);
  });
});

describe('metrics: rendering without a runtime', () => {
  const rec = (events: string[], workers: Array<[string, 'ok' | 'error' | 'timeout', number]>): ActivationRecord => ({
    activation: 'a', events, trigger: 'http', started: 0, durationMs: 0,
    workers: workers.map(([worker, status, durationMs]) => ({ worker, status, durationMs, logs: [] })),
  });
  const sources = (activations: ActivationMetrics, feeds?: MetricSources['feeds']): MetricSources => ({
    firing: { fired: 0, completed: 0, inFlight: 0, outcomes: { ok: 0, error: 0, timeout: 0 }, queued: () => 0 } as unknown as MetricSources['firing'],
    catalog: { matcher: { size: 0 }, invalid: () => [] } as unknown as MetricSources['catalog'],
    log: { written: 0, dropped: 0 },
    dispatchers: [],
    activations,
    feeds,
  });

  it('puts durations in the right buckets: on a bound counts in it, above the last only in +Inf', () => {
    const a = new ActivationMetrics();
    a.record(rec(['e'], [['w', 'ok', 1], ['w', 'ok', 1.5], ['w', 'timeout', 120_000], ['w', 'error', 0]]));
    const m = parseExposition(renderMetrics(sources(a)));
    const b = (le: string) => value(m, 'livelycouch_worker_duration_seconds_bucket', { worker: 'w', le });
    expect([b('0.001'), b('0.0025'), b('60'), b('+Inf')]).to.deep.equal([2, 3, 3, 4]);
    expect(value(m, 'livelycouch_worker_duration_seconds_sum', { worker: 'w' })).to.be.closeTo(120.0025, 1e-9);
    expect(value(m, 'livelycouch_triggers_total', { event: 'e', status: 'error' })).to.equal(1);
  });

  it('escapes label values (quote, backslash, line feed) and counts a chain stopped without an event under event=""', () => {
    const a = new ActivationMetrics();
    const id = 'a"b\\c\nd';
    a.record(rec([id], [[id, 'ok', 2]]));
    a.record(rec([], [['', 'error', 0]]));
    const m = parseExposition(renderMetrics(sources(a)));
    expect(value(m, 'livelycouch_triggers_total', { event: id, status: 'ok' })).to.equal(1);
    expect(value(m, 'livelycouch_worker_duration_seconds_count', { worker: id })).to.equal(1);
    expect(value(m, 'livelycouch_triggers_total', { event: '', status: 'error' })).to.equal(1);
    // The outcome of a stopped chain names no worker and is not a worker series.
    expect(value(m, 'livelycouch_worker_duration_seconds_count', { worker: '' })).to.equal(undefined);
  });

  it('bounds the number of series: names beyond the limit are counted under _other', () => {
    const a = new ActivationMetrics(3);
    for (let i = 0; i < 10; i++) a.record(rec([`e${i}`], [[`w${i}`, 'ok', 1]]));
    const m = parseExposition(renderMetrics(sources(a)));
    const events = new Set(m.get('livelycouch_triggers_total')!.samples.map((s) => s.labels.event));
    expect([...events]).to.deep.equal(['e0', 'e1', 'e2', '_other']);
    expect(value(m, 'livelycouch_triggers_total', { event: '_other', status: 'ok' })).to.equal(7);
    expect(value(m, 'livelycouch_worker_duration_seconds_count', { worker: '_other' })).to.equal(7);
  });

  it('renders feed lag and state from the changes triggers when given them', () => {
    const feeds = { stats: () => [{ event: 'inbox_ev', db: 'inbox', state: 'following', lag: 12 }, { event: 'x', db: 'gone', state: 'failed' }] };
    const m = parseExposition(renderMetrics(sources(new ActivationMetrics(), feeds)));
    expect(m.get('livelycouch_feed_lag')!.type).to.equal('gauge');
    expect(value(m, 'livelycouch_feed_lag', { event: 'inbox_ev', db: 'inbox' })).to.equal(12);
    expect(value(m, 'livelycouch_feed_lag', { event: 'x', db: 'gone' })).to.equal(undefined);
    expect(value(m, 'livelycouch_feed_state', { event: 'x', db: 'gone', state: 'failed' })).to.equal(1);
    expect(parseExposition(renderMetrics(sources(new ActivationMetrics()))).has('livelycouch_feed_lag')).to.equal(false);
  });

  it('the strict reader refuses what the format forbids (so its passing means something)', () => {
    const bad = [
      'livelycouch_x 1\n', // no TYPE
      '# TYPE a counter\na{l="x} 1\n', // unterminated label
      '# TYPE a counter\na 1\n# TYPE b gauge\nb 1\na 2\n', // family split
      '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n', // falling buckets
      '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n', // +Inf != count
      '# TYPE a counter\na 1', // no final line feed
      '# TYPE a counter\na{l="\\q"} 1\n', // bad escape
    ];
    for (const text of bad) expect(() => parseExposition(text), JSON.stringify(text)).to.throw();
  });
});
