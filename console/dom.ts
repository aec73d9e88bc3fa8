/**
 * What every console page shares: building DOM without innerHTML (event ids, worker output
 * and documents are user data), fetching JSON from the runtime with the session cookie, the
 * light/dark theme, and number and time formatting.
 */

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

/** An element with attributes (`on…` are listeners; false/null/undefined are left out) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Array<Child | Child[]>): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v as EventListener);
    else if (k === 'class') el.className = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'object' ? c : String(c));
  }
  return el;
}

export const kSignIn = '/_lively/ui/signin';

/** Thrown for a reply that is not 2xx; `body` is its JSON when it had one. */
export class HttpError extends Error {
  constructor(readonly status: number, readonly body: unknown) {
    super(`${status} ${(body as { reason?: string } | null)?.reason ?? (body as { error?: string } | null)?.error ?? ''}`.trim());
  }
}

/** JSON from the runtime; a session gone (401/403 on the console's own API) goes back to sign-in. */
export async function api<T = any>(url: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(url, { credentials: 'same-origin', ...init, headers: { accept: 'application/json', ...(init.body ? { 'content-type': 'application/json' } : {}), ...init.headers } });
  const text = await res.text();
  let body: unknown = text;
  try { body = text ? JSON.parse(text) : undefined; } catch { /* not JSON */ }
  if ((res.status === 401 || res.status === 403) && url.startsWith('/_lively/')) {
    location.assign(`${kSignIn}${res.status === 403 ? '?reason=forbidden' : ''}`);
  }
  if (!res.ok) throw new HttpError(res.status, body);
  return body as T;
}

export type Theme = 'light' | 'dark';
const kThemeKey = 'livelycouch.theme';

/** The theme chosen with the toggle, or the system's. */
export function currentTheme(): Theme {
  const chosen = localStorage.getItem(kThemeKey);
  if (chosen === 'light' || chosen === 'dark') return chosen;
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

export function applyTheme(theme: Theme, remember = false): void {
  document.documentElement.dataset.theme = theme;
  if (remember) localStorage.setItem(kThemeKey, theme);
}

/** A button that switches light and dark, saying which is on. */
export function themeToggle(onChange?: (t: Theme) => void): HTMLButtonElement {
  const button = h('button', { type: 'button', class: 'theme-toggle', 'aria-pressed': String(currentTheme() === 'dark') }, 'Dark theme');
  button.addEventListener('click', () => {
    const next: Theme = currentTheme() === 'dark' ? 'light' : 'dark';
    applyTheme(next, true);
    button.setAttribute('aria-pressed', String(next === 'dark'));
    onChange?.(next);
  });
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
    if (localStorage.getItem(kThemeKey) === null) {
      applyTheme(currentTheme());
      button.setAttribute('aria-pressed', String(currentTheme() === 'dark'));
      onChange?.(currentTheme());
    }
  });
  return button;
}

export function fmtNumber(n: number | null | undefined, digits = 0): string {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  return n.toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

export function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '–';
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 && !Number.isInteger(ms) ? 2 : 0)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

export function fmtBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** A time as a <time> element: local clock time, the full ISO time on hover and for readers. */
export function fmtTime(ms: number | null | undefined): Node {
  if (!ms) return document.createTextNode('never');
  const d = new Date(ms);
  return h('time', { datetime: d.toISOString(), title: d.toISOString() }, d.toLocaleTimeString('en-GB', { hour12: false }) + (Date.now() - ms > 86_400_000 ? ` ${d.toLocaleDateString('en-GB')}` : ''));
}

export function json(v: unknown): string {
  return v === undefined ? '–' : JSON.stringify(v, null, 2);
}

/** A status as a badge: the word is always shown, colour only adds to it. */
export function badge(status: string): HTMLElement {
  return h('span', { class: `badge badge-${status}` }, status);
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
