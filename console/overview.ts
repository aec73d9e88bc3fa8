/**
 * Overview: triggers per second, latency (p50/p99), errors, queue depth, warm workers and store
 * health over the last minutes, as small uPlot charts fed by the live stream's ticks.
 */
import uPlot from 'uplot';
import { fmtMs, fmtNumber, h } from './dom.ts';
import type { LiveStream, Point } from './stream.ts';

interface ChartSpec {
  id: string;
  title: string;
  series: Array<{ label: string; value: (p: Point) => number | null; color: string }>;
  now: (p: Point) => string;
  range?: [number, number];
}

const kCharts: ChartSpec[] = [
  { id: 'triggers', title: 'Triggers per second', series: [{ label: 'triggers/s', value: (p) => p.triggers, color: '--chart-1' }], now: (p) => `${fmtNumber(p.triggers)}/s` },
  { id: 'latency', title: 'Worker latency', series: [{ label: 'p50 ms', value: (p) => p.p50, color: '--chart-1' }, { label: 'p99 ms', value: (p) => p.p99, color: '--chart-2' }], now: (p) => `p50 ${fmtMs(p.p50)} · p99 ${fmtMs(p.p99)}` },
  { id: 'errors', title: 'Errors per second', series: [{ label: 'errors/s', value: (p) => p.errors, color: '--chart-err' }], now: (p) => `${fmtNumber(p.errors)}/s` },
  { id: 'queue', title: 'Queue depth', series: [{ label: 'waiting', value: (p) => p.queued, color: '--chart-1' }, { label: 'in flight', value: (p) => p.inFlight, color: '--chart-2' }], now: (p) => `${fmtNumber(p.queued)} waiting · ${fmtNumber(p.inFlight)} in flight` },
  { id: 'warm', title: 'Warm workers', series: [{ label: 'warm', value: (p) => p.warm, color: '--chart-1' }], now: (p) => fmtNumber(p.warm) },
  { id: 'store', title: 'Store health', series: [{ label: 'up', value: (p) => p.store, color: '--chart-ok' }], now: (p) => (p.store ? 'up' : 'down'), range: [0, 1] },
];

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

export function overviewPage(main: HTMLElement, stream: LiveStream): () => void {
  const grid = h('div', { class: 'charts' });
  main.append(h('h1', {}, 'Overview'), h('p', { class: 'hint' }, 'The last ten minutes, a point a second, live.'), grid);
  const plots: Array<{ spec: ChartSpec; plot?: uPlot; box: HTMLElement; now: HTMLElement }> = kCharts.map((spec) => {
    const now = h('span', { class: 'chart-now', 'aria-live': 'off', id: `now-${spec.id}` }, '–');
    const box = h('div', { class: 'chart-box', role: 'img', 'aria-label': `${spec.title}, chart of the last minutes` });
    grid.append(h('section', { class: 'card chart', 'aria-labelledby': `chart-${spec.id}` }, h('h2', { id: `chart-${spec.id}` }, spec.title, ' ', now), box));
    return { spec, box, now };
  });

  function data(spec: ChartSpec): uPlot.AlignedData {
    const hist = stream.history;
    return [hist.map((p) => p.t), ...spec.series.map((s) => hist.map((p) => s.value(p)))] as uPlot.AlignedData;
  }

  function build(): void {
    const text = cssVar('--muted');
    const grid = cssVar('--grid');
    for (const c of plots) {
      c.plot?.destroy();
      const width = Math.max(240, c.box.clientWidth || 320);
      c.plot = new uPlot({
        width, height: 140, legend: { show: true, live: false }, cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true }, y: c.spec.range ? { range: c.spec.range } : { range: (_u, _min, max) => [0, Math.max(1, max)] } },
        axes: [
          { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } },
          { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, size: 48 },
        ],
        series: [{}, ...c.spec.series.map((s) => ({ label: s.label, stroke: cssVar(s.color), width: 2, spanGaps: false }))],
      }, data(c.spec), c.box);
    }
  }

  let pending = false;
  function update(): void {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      const last = stream.history[stream.history.length - 1];
      for (const c of plots) {
        c.plot?.setData(data(c.spec));
        if (last) c.now.textContent = c.spec.now(last);
      }
    });
  }

  build();
  update();
  const offTick = stream.onTick(update);
  const onTheme = (): void => build();
  const onResize = (): void => { for (const c of plots) c.plot?.setSize({ width: Math.max(240, c.box.clientWidth), height: 140 }); };
  addEventListener('lively-theme', onTheme);
  addEventListener('resize', onResize);
  return () => {
    offTick();
    removeEventListener('lively-theme', onTheme);
    removeEventListener('resize', onResize);
    for (const c of plots) c.plot?.destroy();
  };
}
