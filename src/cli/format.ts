/** What the command line prints for people: deploy reports, activations, status. One fact per line. */
import type { DeployReport } from '../core/deploy.ts';

export function deployLines(report: DeployReport, opts: { quietUnchanged?: boolean } = {}): string[] {
  const lines = report.steps
    .filter((s) => !(opts.quietUnchanged && s.action === 'unchanged'))
    .map((s) => `${s.action} ${s.kind} ${s.id}`);
  const count = (a: string) => report.steps.filter((s) => s.action === a).length;
  const changed = ['created', 'updated', 'deleted'].map((a) => [a, count(a)] as const).filter(([, n]) => n > 0);
  const unchanged = count('unchanged');
  lines.push(changed.length === 0
    ? `no changes (${unchanged} unchanged)`
    : `${changed.map(([a, n]) => `${n} ${a}`).join(', ')}, ${unchanged} unchanged`);
  for (const w of report.warnings ?? []) lines.push(`warning: ${w}`);
  return lines;
}

/** An activation record as the API returns it. Fields are read defensively: servers differ in age. */
export interface ActivationView {
  activation: string;
  events?: string[];
  trigger?: string;
  path?: string;
  method?: string;
  started?: number;
  durationMs?: number;
  workers?: Array<{ worker: string; status: string; error?: { code?: string; message?: string }; logs?: Array<{ msg?: string }> }>;
  /** late output of that activation (a process worker wrote it after silence had ended its message). */
  lateOf?: string;
}

const oneLine = (s: string, max = 160) => {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
};

/** `2026-11-28T08:03:28.123Z  <activation>  http POST /inbox/messages  post_message  file_message:ok  12ms` */
export function activationLine(a: ActivationView): string {
  const when = typeof a.started === 'number' ? new Date(a.started).toISOString() : '-';
  const what = [a.trigger ?? '?', a.method, a.path].filter(Boolean).join(' ');
  const workers = (a.workers ?? []).map((w) => `${w.worker}:${w.status}`).join(' ') || '(no workers)';
  const errors = (a.workers ?? []).filter((w) => w.error).map((w) => `${w.worker}: ${w.error!.code ?? 'error'} ${oneLine(w.error!.message ?? '')}`.trim());
  const duration = typeof a.durationMs === 'number' ? `${Math.round(a.durationMs)}ms` : '';
  if (a.lateOf !== undefined) {
    const lines = (a.workers ?? []).flatMap((w) => (w.logs ?? []).map((l) => oneLine(String(l.msg ?? ''))));
    return [when, a.activation, `late output of ${a.lateOf}`, (a.workers ?? []).map((w) => w.worker).join(' ')].join('  ')
      + (lines.length ? `  — ${lines.join(' | ')}` : '');
  }
  return [when, a.activation, what, (a.events ?? []).join(',') || '-', workers, duration].filter(Boolean).join('  ')
    + (errors.length ? `  — ${errors.join('; ')}` : '');
}

/** The parts of `/_lively/status` worth a line each; anything else stays in --json. */
export function statusLines(s: Record<string, unknown>): string[] {
  const lines: string[] = [];
  const get = (o: unknown, k: string): unknown => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined);
  lines.push(`runtime     ${String(s.url ?? '?')}  ${s.ok === false ? 'stopping' : 'ok'}`);
  const store = s.store;
  if (store) lines.push(`store       ${get(store, 'embedded') ? `embedded (pid ${String(get(store, 'pid'))})` : 'CouchDB'}`);
  const events = s.events;
  if (events) {
    const invalid = (get(events, 'invalid') as Array<{ id?: string; reason?: string }> | undefined) ?? [];
    lines.push(`events      ${String(get(events, 'loaded') ?? 0)} loaded, ${invalid.length} invalid`);
    for (const e of invalid) lines.push(`  invalid event ${String(e.id)}: ${oneLine(String(e.reason ?? ''))}`);
  }
  const workers = s.workers;
  if (workers) {
    const invalid = (get(workers, 'invalid') as Array<{ id?: string; reason?: string }> | undefined) ?? [];
    const problems = (get(workers, 'problems') as Array<{ id?: string; reason?: string }> | undefined) ?? [];
    const loaded = get(workers, 'loaded');
    lines.push(`workers     ${Array.isArray(loaded) ? loaded.length : String(loaded ?? 0)} loaded, ${invalid.length} invalid`);
    for (const w of invalid) lines.push(`  invalid worker ${String(w.id)}: ${oneLine(String(w.reason ?? ''))}`);
    for (const w of problems) lines.push(`  worker ${String(w.id)} cannot run: ${oneLine(String(w.reason ?? ''))}`);
  }
  const engine = s.isolateEngine;
  if (engine) {
    const error = get(engine, 'error');
    lines.push(`isolates    ${error ? `unavailable: ${oneLine(String(get(error, 'message') ?? ''))}` : `isolated-vm ${String(get(engine, 'version'))} (${String(get(engine, 'package'))}) on Node ${String(get(engine, 'node'))}`}`);
  }
  const acts = s.activations;
  if (acts && typeof acts === 'object') {
    const a = acts as Record<string, unknown>;
    const parts = ['fired', 'completed', 'inFlight', 'waiting', 'logged', 'dropped'].filter((k) => typeof a[k] === 'number').map((k) => `${k} ${String(a[k])}`);
    lines.push(`activations ${parts.join(', ')}`);
  }
  return lines;
}
