/** Store: the databases the runtime uses with their sizes, and the changes feeds with their checkpoints. */
import { api, badge, errorText, fmtBytes, fmtNumber, h } from './dom.ts';

interface StoreView {
  store: { embedded: boolean; up: boolean; prefix: string };
  databases: Array<{ name: string; docs?: number; fileBytes?: number; activeBytes?: number; error?: string }>;
  feeds: Array<{ event: string; db: string; state: string; lag?: number; checkpoint?: string; holder?: string; lastError?: string }>;
}

export function storePage(main: HTMLElement): () => void {
  const body = h('div');
  main.append(h('h1', {}, 'Store'), body);
  async function load(): Promise<void> {
    try {
      const s = await api<StoreView>('/_lively/console/store');
      body.replaceChildren(
        h('p', {}, s.store.embedded ? 'Embedded store' : 'Apache CouchDB', ' · ', badge(s.store.up ? 'up' : 'down'), ' · database prefix ', h('code', {}, s.store.prefix || '(none)')),
        h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'store-dbs' },
          h('caption', {}, 'Databases'),
          h('thead', {}, h('tr', {}, ...['Database', 'Documents', 'File size', 'Live data'].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, ...s.databases.map((d) => h('tr', {},
            h('th', { scope: 'row' }, h('code', {}, d.name)),
            ...(d.error ? [h('td', { colspan: 3 }, d.error)] : [h('td', { class: 'num' }, fmtNumber(d.docs)), h('td', { class: 'num' }, fmtBytes(d.fileBytes)), h('td', { class: 'num' }, fmtBytes(d.activeBytes))])))))),
        h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'store-feeds' },
          h('caption', {}, 'Changes feeds'),
          h('thead', {}, h('tr', {}, ...['Event', 'Database', 'State', 'Lag', 'Checkpoint'].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, ...(s.feeds.length ? s.feeds.map((f) => h('tr', {},
            h('th', { scope: 'row' }, h('code', {}, f.event)), h('td', {}, h('code', {}, f.db)),
            h('td', {}, badge(f.state), f.lastError ? ` ${f.lastError}` : ''),
            h('td', { class: 'num' }, fmtNumber(f.lag)), h('td', { class: 'wrap' }, h('code', {}, f.checkpoint ? f.checkpoint.slice(0, 24) : '–'))))
            : [h('tr', {}, h('td', { colspan: 5 }, 'No changes triggers.'))])))),
      );
    } catch (err) {
      body.replaceChildren(h('p', { role: 'alert' }, `The store could not be described: ${errorText(err)}`));
    }
  }
  void load();
  const timer = setInterval(() => { if (!document.hidden) void load(); }, 10_000);
  return () => clearInterval(timer);
}
