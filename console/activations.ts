/**
 * Activations: a live table fed by the stream (at most kMaxRows rows; new rows are added once
 * per animation frame, so thousands a second cost the page a frame's work), filters by event,
 * worker, status and time, the detail of one activation (input, result, logs, duration) with
 * rerun, and the dead activations (a worker failed all its attempts), each with rerun.
 */
import { api, badge, errorText, fmtMs, fmtNumber, fmtTime, h, json } from './dom.ts';
import type { LiveStream, Summary } from './stream.ts';

const kMaxRows = 200;

interface Filter { event: string; worker: string; status: string; since: number | undefined }

function matches(a: Summary, f: Filter): boolean {
  if (f.event && !a.events.includes(f.event)) return false;
  if (f.worker && !a.workers.some((w) => w.worker === f.worker)) return false;
  if (f.status && a.status !== f.status) return false;
  if (f.since !== undefined && a.started < f.since) return false;
  return true;
}

export function activationsPage(main: HTMLElement, stream: LiveStream, dead: boolean): () => void {
  const status = h('p', { class: 'message', role: 'status', 'aria-live': 'polite' });
  const event = h('input', { id: 'filter-event', name: 'event', type: 'text', spellcheck: 'false' });
  const worker = h('input', { id: 'filter-worker', name: 'worker', type: 'text', spellcheck: 'false' });
  const state = h('select', { id: 'filter-status', name: 'status' }, ...['', 'ok', 'error', 'timeout', 'dead'].map((s) => h('option', { value: s }, s || 'any')));
  const since = h('input', { id: 'filter-since', name: 'since', type: 'datetime-local', step: 1 });
  const pause = h('button', { type: 'button', 'aria-pressed': 'false', id: 'pause' }, 'Pause');
  const counter = h('span', { class: 'hint', id: 'live-count' });
  const filters = h('form', { class: 'filters', 'aria-label': 'Filter activations' },
    h('label', {}, 'Event ', event), h('label', {}, 'Worker ', worker), h('label', {}, 'Status ', state), h('label', {}, 'Since ', since),
    h('button', { type: 'submit' }, 'Apply'), dead ? null : pause, counter);
  if (dead) state.value = 'dead';
  const tbody = h('tbody', { id: 'activation-rows' });
  const detail = h('section', { class: 'card detail', id: 'activation-detail', hidden: true, 'aria-labelledby': 'activation-title' });
  const title = dead ? 'Dead activations' : 'Activations';
  main.append(h('h1', {}, title),
    h('nav', { class: 'tabs', 'aria-label': 'Activation lists' },
      h('a', { href: '#/activations', 'aria-current': dead ? null : 'page' }, 'Live'),
      h('a', { href: '#/dead', 'aria-current': dead ? 'page' : null }, 'Dead')),
    filters, status,
    h('div', { class: 'split' },
      h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'activations-table' },
        h('caption', {}, dead ? 'Activations whose worker failed every attempt' : `Newest first, live; the last ${kMaxRows} are kept`),
        h('thead', {}, h('tr', {}, ...['Activation', 'Events', 'Trigger', 'Status', 'Duration', 'Started', ...(dead ? ['Action'] : [])].map((c) => h('th', { scope: 'col' }, c)))),
        tbody)),
      detail));

  let filter: Filter = { event: '', worker: '', status: dead ? 'dead' : '', since: undefined };
  let queue: Summary[] = [];
  let frame = 0;
  let paused = false;
  let skipped = 0;

  function row(a: Summary): HTMLTableRowElement {
    const open = h('button', { type: 'button', class: 'link', 'data-activation': a.activation, 'aria-label': `Open activation ${a.activation}` }, a.activation);
    open.addEventListener('click', () => void show(a.activation));
    return h('tr', { 'data-activation': a.activation, 'data-status': a.status },
      h('th', { scope: 'row' }, open),
      h('td', {}, a.events.join(', ')),
      h('td', {}, a.trigger, a.path ? [' ', h('code', {}, `${a.method ?? ''} ${a.path}`)] : ''),
      h('td', {}, badge(a.status)),
      h('td', { class: 'num' }, fmtMs(a.durationMs)),
      h('td', {}, fmtTime(a.started)),
      dead ? h('td', {}, (() => {
        const b = h('button', { type: 'button', class: 'small', 'aria-label': `Rerun activation ${a.activation}` }, 'Rerun');
        b.addEventListener('click', () => void rerun(a.activation, b));
        return b;
      })()) : null);
  }

  function drain(): void {
    frame = 0;
    if (queue.length === 0) return;
    // the newest kMaxRows at most: older ones would be trimmed at once
    const fresh = queue.slice(-kMaxRows);
    queue = [];
    const frag = document.createDocumentFragment();
    for (let i = fresh.length - 1; i >= 0; i--) frag.append(row(fresh[i]!));
    tbody.querySelector('tr.empty')?.remove();
    tbody.prepend(frag);
    while (tbody.rows.length > kMaxRows) tbody.lastElementChild!.remove();
    counter.textContent = skipped ? `${fmtNumber(skipped)} more not shown (too many to list live)` : '';
  }

  const offBatch = dead ? () => undefined : stream.onBatch((b) => {
    if (paused) return;
    skipped += b.skipped;
    for (const a of b.activations) if (matches(a, filter)) queue.push(a);
    if (queue.length > kMaxRows) queue.splice(0, queue.length - kMaxRows);
    if (queue.length && !frame) frame = requestAnimationFrame(drain);
  });

  async function load(): Promise<void> {
    const q = new URLSearchParams({ limit: '50' });
    if (filter.event) q.set('event', filter.event);
    if (filter.worker) q.set('worker', filter.worker);
    if (filter.status) q.set('status', filter.status);
    if (filter.since !== undefined) q.set('since', String(filter.since));
    try {
      const page = await api<{ activations: Array<Summary & { workers: Array<{ worker: string; status: string }> }> }>(`/_lively/activations?${q}`);
      const list = page.activations.map((r) => ({ ...r, status: (r as { dead?: boolean }).dead ? 'dead' : r.workers.some((w) => w.status === 'error') ? 'error' : r.workers.some((w) => w.status === 'timeout') ? 'timeout' : 'ok' }));
      tbody.replaceChildren(...(list.length ? list.map(row) : [h('tr', { class: 'empty' }, h('td', { colspan: dead ? 7 : 6 }, dead ? 'No dead activations.' : 'Nothing recorded yet; new activations appear here as they finish.'))]));
    } catch (err) {
      status.textContent = `Activations could not be loaded: ${errorText(err)}`;
    }
  }

  async function rerun(id: string, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    try {
      const r = await api<{ activation: string; events: string[] }>(`/_lively/activations/${encodeURIComponent(id)}/rerun`, { method: 'POST' });
      status.replaceChildren(`Activation ${id} fired again as `, (() => {
        const b = h('button', { type: 'button', class: 'link', id: 'rerun-result', 'data-activation': r.activation }, r.activation);
        b.addEventListener('click', () => void show(r.activation));
        return b;
      })(), '.');
    } catch (err) {
      status.textContent = `Activation ${id} was not fired again: ${errorText(err)}`;
    } finally {
      button.disabled = false;
    }
  }

  async function show(id: string): Promise<void> {
    detail.hidden = false;
    detail.replaceChildren(h('h2', { id: 'activation-title' }, `Activation ${id}`), h('p', {}, 'Loading…'));
    let rec: any;
    try {
      rec = await api(`/_lively/activations/${encodeURIComponent(id)}`);
    } catch (err) {
      // a record is written in batches: one that just finished may not be stored yet
      detail.replaceChildren(h('h2', { id: 'activation-title' }, `Activation ${id}`), h('p', { role: 'alert' }, `Not loaded: ${errorText(err)}`));
      return;
    }
    const again = h('button', { type: 'button', class: 'primary', id: 'rerun', disabled: !rec.input }, 'Rerun');
    again.addEventListener('click', () => void rerun(id, again));
    const close = h('button', { type: 'button', 'aria-label': 'Close the activation detail' }, 'Close');
    close.addEventListener('click', () => { detail.hidden = true; tbody.querySelector<HTMLElement>(`button[data-activation="${CSS.escape(id)}"]`)?.focus(); });
    detail.replaceChildren(
      h('h2', { id: 'activation-title', tabindex: -1 }, `Activation ${rec.activation}`),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Events'), h('dd', {}, rec.events.join(', ') || '–'),
        h('dt', {}, 'Trigger'), h('dd', {}, rec.trigger, rec.path ? [' ', h('code', {}, `${rec.method ?? ''} ${rec.path}`)] : ''),
        h('dt', {}, 'Started'), h('dd', {}, fmtTime(rec.started)),
        h('dt', {}, 'Duration'), h('dd', {}, fmtMs(rec.durationMs)),
        rec.rerunOf ? [h('dt', {}, 'Rerun of'), h('dd', {}, h('code', {}, rec.rerunOf))] : null,
        rec.dead ? [h('dt', {}, 'Dead'), h('dd', {}, 'a worker failed every attempt')] : null),
      h('div', { class: 'actions' }, again, close, rec.input ? null : h('span', { class: 'hint' }, 'Its input was not kept, so it cannot be rerun.')),
      h('h3', {}, 'Input'), h('pre', { class: 'result', tabindex: 0, id: 'activation-input' }, json(rec.input)),
      ...rec.workers.map((w: any) => h('section', { class: 'outcome' },
        h('h3', {}, 'Worker ', h('code', {}, w.worker || '(none)'), ' ', badge(w.status), ` ${fmtMs(w.durationMs)}`, w.attempts ? ` · ${w.attempts} attempt${w.attempts === 1 ? '' : 's'}` : ''),
        w.error ? h('pre', { class: 'result error', tabindex: 0 }, `${w.error.code ?? ''} ${w.error.message}`) : null,
        h('h4', {}, 'Result'), h('pre', { class: 'result', tabindex: 0, 'data-worker': w.worker }, json(w.result)),
        h('h4', {}, 'Logs'), w.logs.length ? h('pre', { class: 'result logs', tabindex: 0 }, w.logs.map((l: any) => `${l.level ?? ''} ${l.msg}`).join('\n')) : h('p', {}, 'none'))),
    );
    detail.querySelector<HTMLElement>('#activation-title')?.focus({ preventScroll: true });
  }

  filters.addEventListener('submit', (e) => {
    e.preventDefault();
    const t = since.value ? new Date(since.value).getTime() : undefined;
    filter = { event: event.value.trim(), worker: worker.value.trim(), status: state.value, since: Number.isNaN(t) ? undefined : t };
    skipped = 0;
    void load();
  });
  pause.addEventListener('click', () => {
    paused = !paused;
    pause.setAttribute('aria-pressed', String(paused));
    pause.textContent = paused ? 'Resume' : 'Pause';
  });

  void load();
  return () => { offBatch(); if (frame) cancelAnimationFrame(frame); };
}
