/**
 * Workers: each worker document with its type, revision (and whether that revision is the one
 * loaded), its warm instances, messages in flight and queued, memory (processes and isolates), runs,
 * errors and its last errors; the dispatchers' totals; and, for the worker chosen, its source (read-only, coloured) and its attachments.
 */
import { api, errorText, fmtBytes, fmtNumber, fmtTime, h } from './dom.ts';
import { highlight, languageOf } from './highlight.ts';

interface WorkerView { id: string; rev: string; type: string; isolation: string; delegate: string; attachments: Array<{ name: string; contentType?: string; length?: number }>; env: string[]; secrets: string[]; loadedRev?: string; problem?: string; runs: number; errors: number; lastRun?: number; warm: number; inFlight: number; queued: number; memoryBytes?: number; lastErrors: Array<{ at: number; activation: string; message: string }> }
interface WorkerDetail { id: string; rev: string; type: string; delegate?: string; attachments: WorkerView['attachments']; source?: string; sourceNote?: string }

export function workersPage(main: HTMLElement): () => void {
  const status = h('p', { class: 'message', role: 'status', 'aria-live': 'polite' });
  const pools = h('div', { class: 'pools' });
  const tbody = h('tbody');
  const detail = h('section', { class: 'card detail', id: 'worker-detail', 'aria-live': 'polite', hidden: true });
  main.append(h('h1', {}, 'Workers'), status, pools,
    h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'workers-table' },
      h('caption', {}, 'Worker documents, refreshed every five seconds'),
      h('thead', {}, h('tr', {}, ...['Worker', 'Type', 'Revision', 'Warm', 'In flight', 'Queued', 'Memory', 'Runs', 'Errors', 'Last run', 'Last error'].map((c) => h('th', { scope: 'col' }, c)))),
      tbody)),
    detail);

  async function open(id: string): Promise<void> {
    detail.hidden = false;
    detail.replaceChildren(h('h2', {}, `Worker ${id}`), h('p', {}, 'Loading…'));
    try {
      const w = await api<WorkerDetail>(`/_lively/console/workers/${encodeURIComponent(id)}`);
      const code = h('code', { class: 'source' });
      if (w.source !== undefined) code.append(highlight(w.source, languageOf(w.type, w.delegate ?? '')));
      detail.replaceChildren(
        h('h2', { tabindex: -1, id: 'worker-detail-title' }, `Worker ${w.id}`),
        h('p', {}, `Type ${w.type}, revision `, h('code', {}, w.rev), w.delegate ? [', delegate ', h('code', {}, w.delegate)] : ''),
        h('h3', {}, 'Attachments'),
        h('ul', { class: 'plain' }, ...w.attachments.map((a) => h('li', {}, h('code', {}, a.name), ` · ${a.contentType ?? 'unknown type'} · ${fmtBytes(a.length)}`))),
        h('h3', {}, 'Source', w.delegate ? [' of ', h('code', {}, w.delegate)] : ''),
        w.source !== undefined ? h('pre', { class: 'code', tabindex: 0, 'aria-label': `Source of ${w.delegate}` }, code) : h('p', {}, w.sourceNote ?? ''),
      );
      detail.querySelector<HTMLElement>('#worker-detail-title')?.focus({ preventScroll: true });
    } catch (err) {
      detail.replaceChildren(h('h2', {}, `Worker ${id}`), h('p', { role: 'alert' }, `Not loaded: ${errorText(err)}`));
    }
  }

  async function load(): Promise<void> {
    try {
      const r = await api<{ workers: WorkerView[]; dispatchers: Array<{ name: string; warm: number; inFlight: number; queued?: number }>; memory: { rss: number; heapUsed: number } }>('/_lively/console/workers');
      pools.replaceChildren(...r.dispatchers.map((d) => h('div', { class: 'card stat' },
        h('h2', {}, d.name), h('p', {}, `${fmtNumber(d.warm)} warm · ${fmtNumber(d.inFlight)} in flight${d.queued !== undefined ? ` · ${fmtNumber(d.queued)} queued` : ''}`))),
        h('div', { class: 'card stat' }, h('h2', {}, 'runtime memory'), h('p', {}, `${fmtBytes(r.memory.rss)} resident · ${fmtBytes(r.memory.heapUsed)} heap`)));
      const focused = (document.activeElement as HTMLElement | null)?.getAttribute('data-worker');
      tbody.replaceChildren(...(r.workers.length ? r.workers.map((w) => {
        const button = h('button', { type: 'button', class: 'link', 'data-worker': w.id, 'aria-label': `Show worker ${w.id}` }, w.id);
        button.addEventListener('click', () => void open(w.id));
        const last = w.lastErrors[0];
        return h('tr', {},
          h('th', { scope: 'row' }, button),
          h('td', {}, w.type, w.type === 'node' ? ` (${w.isolation})` : ''),
          h('td', {}, h('code', {}, w.rev.slice(0, 10)), w.loadedRev === w.rev ? ' loaded' : w.problem ? ` · ${w.problem}` : ''),
          h('td', { class: 'num' }, fmtNumber(w.warm)),
          h('td', { class: 'num' }, fmtNumber(w.inFlight)),
          h('td', { class: 'num' }, fmtNumber(w.queued)),
          // thread workers share their threads' memory: it is not told apart per worker
          h('td', { class: 'num', title: w.memoryBytes === undefined ? 'shared with the other workers of its threads' : '' }, w.memoryBytes === undefined ? 'shared' : fmtBytes(w.memoryBytes)),
          h('td', { class: 'num' }, fmtNumber(w.runs)),
          h('td', { class: 'num' }, fmtNumber(w.errors)),
          h('td', {}, fmtTime(w.lastRun)),
          h('td', { class: 'wrap' }, last ? [fmtTime(last.at), ' ', last.message] : '–'));
      }) : [h('tr', {}, h('td', { colspan: 11 }, 'No workers yet.'))]));
      if (focused) tbody.querySelector<HTMLButtonElement>(`button[data-worker="${CSS.escape(focused)}"]`)?.focus();
    } catch (err) {
      status.textContent = `Workers could not be loaded: ${errorText(err)}`;
    }
  }
  void load();
  const timer = setInterval(() => { if (!document.hidden) void load(); }, 5_000);
  return () => clearInterval(timer);
}
