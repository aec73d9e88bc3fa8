/**
 * Events: each event with its triggers (HTTP paths and methods, changes database and lag,
 * schedule and next tick), last fired, one-minute count and errors; a button that disables
 * or enables it (its document's `"disabled"`); and a form that fires an HTTP event with a
 * body and shows what came back.
 */
import { api, badge, errorText, fmtNumber, fmtTime, h } from './dom.ts';

interface TriggerView { kind: string; path?: string; methods?: string[]; db?: string; state?: string; lag?: number; every?: number; cron?: string; tz?: string; next?: number }
interface EventView { id: string; disabled: boolean; auth: unknown; workers: string[]; triggers: TriggerView[]; fired: number; errors: number; lastFired?: number; lastStatus?: string; perMinute: number }

function triggerText(t: TriggerView): Node {
  if (t.kind === 'http') return h('span', {}, h('code', {}, `${t.methods?.join(',') ?? '*'} /_events${t.path}`));
  if (t.kind === 'changes') return h('span', {}, 'changes of ', h('code', {}, t.db ?? ''), t.lag !== undefined ? ` · lag ${fmtNumber(t.lag)}` : '', t.state ? ` · ${t.state}` : '');
  const every = t.every ? `every ${t.every >= 60_000 ? `${t.every / 60_000} min` : `${t.every / 1000} s`}` : `cron ${t.cron} (${t.tz})`;
  return h('span', {}, every, t.next ? h('span', {}, ' · next ', fmtTime(t.next)) : '');
}

export function eventsPage(main: HTMLElement): () => void {
  const status = h('p', { class: 'message', role: 'status', 'aria-live': 'polite' });
  const tbody = h('tbody');
  const table = h('table', { class: 'data', id: 'events-table' },
    h('caption', {}, 'Events, refreshed every five seconds'),
    h('thead', {}, h('tr', {}, ...['Event', 'Triggers', 'Workers', 'Last fired', 'Last minute', 'Errors', 'State'].map((c) => h('th', { scope: 'col' }, c)))),
    tbody);
  const pick = h('select', { id: 'fire-event', name: 'event' });
  const method = h('select', { id: 'fire-method', name: 'method' }, ...['POST', 'GET', 'PUT', 'DELETE', 'PATCH'].map((m) => h('option', { value: m }, m)));
  const path = h('input', { id: 'fire-path', name: 'path', type: 'text', required: true, spellcheck: 'false', placeholder: '/hello' });
  const body = h('textarea', { id: 'fire-body', name: 'body', rows: 4, spellcheck: 'false', placeholder: '{"name": "Ada"}' });
  const result = h('pre', { id: 'fire-result', class: 'result', tabindex: 0, 'aria-live': 'polite', 'aria-label': 'Result of the last firing' });
  const fire = h('form', { class: 'card fire', 'aria-labelledby': 'fire-title' },
    h('h2', { id: 'fire-title' }, 'Fire an HTTP event'),
    h('div', { class: 'row' },
      h('label', {}, 'Event ', pick),
      h('label', {}, 'Method ', method),
      h('label', { class: 'grow' }, 'Path under /_events ', path)),
    h('label', { class: 'block' }, 'Body (JSON, or text)', body),
    h('button', { type: 'submit', class: 'primary' }, 'Fire and wait'),
    result);
  main.append(h('h1', {}, 'Events'), status, h('div', { class: 'table-wrap' }, table), fire);

  let events: EventView[] = [];
  let stopped = false;

  async function toggle(ev: EventView, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    try {
      await api(`/_lively/console/events/${encodeURIComponent(ev.id)}/disabled`, { method: 'PUT', body: JSON.stringify({ disabled: !ev.disabled }) });
      status.textContent = `Event ${ev.id} ${ev.disabled ? 'enabled' : 'disabled'}.`;
      // the runtime picks the change up from the events database's feed
      setTimeout(() => void load(), 300);
    } catch (err) {
      status.textContent = `Event ${ev.id} was not changed: ${errorText(err)}`;
      button.disabled = false;
    }
  }

  function render(): void {
    // a refresh keeps the keyboard where it was
    const focused = (document.activeElement as HTMLElement | null)?.closest('button[data-event]')?.getAttribute('data-event');
    const rows = events.map((ev) => {
      const button = h('button', { type: 'button', class: 'small', 'data-event': ev.id, 'aria-label': `${ev.disabled ? 'Enable' : 'Disable'} event ${ev.id}` }, ev.disabled ? 'Enable' : 'Disable');
      button.addEventListener('click', () => void toggle(ev, button));
      return h('tr', { 'data-event': ev.id },
        h('th', { scope: 'row' }, h('code', {}, ev.id)),
        h('td', {}, h('ul', { class: 'plain' }, ...ev.triggers.map((t) => h('li', {}, triggerText(t))))),
        h('td', {}, ev.workers.join(', ')),
        h('td', {}, fmtTime(ev.lastFired), ev.lastStatus ? [' ', badge(ev.lastStatus)] : null),
        h('td', { class: 'num' }, fmtNumber(ev.perMinute)),
        h('td', { class: 'num' }, fmtNumber(ev.errors)),
        h('td', {}, badge(ev.disabled ? 'disabled' : 'enabled'), ' ', button));
    });
    tbody.replaceChildren(...(rows.length ? rows : [h('tr', {}, h('td', { colspan: 7 }, 'No events yet.'))]));
    if (focused) tbody.querySelector<HTMLButtonElement>(`button[data-event="${CSS.escape(focused)}"]`)?.focus();
    const chosen = pick.value;
    const http = events.filter((e) => e.triggers.some((t) => t.kind === 'http'));
    pick.replaceChildren(...http.map((e) => h('option', { value: e.id, selected: e.id === chosen }, e.id)));
    if (!chosen && http[0]) choose(http[0]);
  }

  function choose(ev: EventView): void {
    const t = ev.triggers.find((x) => x.kind === 'http');
    if (!t) return;
    path.value = t.path ?? '';
    const m = t.methods?.[0];
    if (m && m !== '*') method.value = m;
  }
  pick.addEventListener('change', () => { const ev = events.find((e) => e.id === pick.value); if (ev) choose(ev); });

  fire.addEventListener('submit', (e) => {
    e.preventDefault();
    result.textContent = 'Firing…';
    const p = path.value.startsWith('/') ? path.value : `/${path.value}`;
    const text = body.value.trim();
    let json = false;
    try { if (text) { JSON.parse(text); json = true; } } catch { /* sent as text */ }
    const sep = p.includes('?') ? '&' : '?';
    fetch(`/_events${p}${sep}wait=true`, {
      method: method.value, credentials: 'same-origin',
      ...(text && method.value !== 'GET' ? { body: text, headers: { 'content-type': json ? 'application/json' : 'text/plain' } } : {}),
    }).then(async (res) => {
      const out = await res.text();
      let shown = out;
      try { shown = JSON.stringify(JSON.parse(out), null, 2); } catch { /* not JSON */ }
      result.textContent = `${res.status} ${res.statusText}\n${shown}`;
      result.dataset.status = String(res.status);
    }, (err) => { result.textContent = `Not sent: ${errorText(err)}`; });
  });

  async function load(): Promise<void> {
    try {
      const r = await api<{ events: EventView[]; invalid: Array<{ id: string; reason: string }> }>('/_lively/console/events');
      events = r.events;
      render();
      if (r.invalid.length) status.textContent = `Invalid event documents: ${r.invalid.map((i) => `${i.id} (${i.reason})`).join('; ')}`;
    } catch (err) {
      status.textContent = `Events could not be loaded: ${errorText(err)}`;
    }
  }
  void load();
  const timer = setInterval(() => { if (!stopped && !document.hidden) void load(); }, 5_000);
  return () => { stopped = true; clearInterval(timer); };
}
