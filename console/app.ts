/**
 * The console's shell: a header with the pages, the signed-in user, the theme toggle and
 * sign-out; one live stream shared by the pages; and hash routes (#/overview, #/events,
 * #/workers, #/activations, #/dead, #/store), so the browser's back button and links work
 * without the runtime serving more than one page.
 */
import { activationsPage } from './activations.ts';
import { api, applyTheme, currentTheme, h, kSignIn, themeToggle } from './dom.ts';
import { eventsPage } from './events.ts';
import { overviewPage } from './overview.ts';
import { storePage } from './store.ts';
import { LiveStream } from './stream.ts';
import { workersPage } from './workers.ts';

applyTheme(currentTheme());

const kPages: Array<{ hash: string; label: string }> = [
  { hash: '#/overview', label: 'Overview' },
  { hash: '#/events', label: 'Events' },
  { hash: '#/workers', label: 'Workers' },
  { hash: '#/activations', label: 'Activations' },
  { hash: '#/store', label: 'Store' },
];

const stream = new LiveStream();
const main = h('main', { id: 'main', tabindex: -1 });
const live = h('span', { class: 'live', role: 'status', 'aria-live': 'polite' }, 'connecting…');
const who = h('span', { class: 'who' });
const signOut = h('button', { type: 'button', id: 'sign-out' }, 'Sign out');
const links = kPages.map((p) => h('a', { href: p.hash }, p.label));

signOut.addEventListener('click', () => {
  stream.close();
  fetch('/_session', { method: 'DELETE', credentials: 'same-origin' }).finally(() => location.assign(kSignIn));
});

document.getElementById('root')!.append(
  h('a', { href: '#main', class: 'skip' }, 'Skip to content'),
  h('header', { class: 'topbar' },
    h('span', { class: 'brand' }, 'LivelyCouch'),
    h('nav', { 'aria-label': 'Console pages' }, ...links),
    h('span', { class: 'spacer' }),
    live, who,
    themeToggle(() => dispatchEvent(new Event('lively-theme'))),
    signOut),
  main,
);
// the skip link focuses the page's content without changing the route
document.querySelector('.skip')!.addEventListener('click', (e) => { e.preventDefault(); main.focus(); });

stream.onState((up) => { live.textContent = up ? 'live' : 'reconnecting…'; live.dataset.up = String(up); });

let leave: (() => void) | undefined;

function route(): void {
  const hash = location.hash || '#/overview';
  leave?.();
  main.replaceChildren();
  for (const a of links) {
    const here = hash === a.getAttribute('href') || (hash === '#/dead' && a.getAttribute('href') === '#/activations');
    if (here) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  if (hash === '#/events') leave = eventsPage(main);
  else if (hash === '#/workers') leave = workersPage(main);
  else if (hash === '#/activations') leave = activationsPage(main, stream, false);
  else if (hash === '#/dead') leave = activationsPage(main, stream, true);
  else if (hash === '#/store') leave = storePage(main);
  else leave = overviewPage(main, stream);
  document.title = `${main.querySelector('h1')?.textContent ?? 'Console'} · LivelyCouch`;
}

addEventListener('hashchange', route);
api<{ name: string | null }>('/_lively/console/me').then((me) => { who.textContent = me.name ?? 'admin'; }, () => undefined);
stream.open();
route();
