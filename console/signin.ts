/**
 * The sign-in page, the one console page served to anyone. It posts the name and password
 * to CouchDB's `/_session` (through the runtime), which answers with the `AuthSession`
 * cookie; the password goes nowhere else and is not kept. Only CouchDB admins get in.
 */
import { applyTheme, currentTheme, h, themeToggle } from './dom.ts';

applyTheme(currentTheme());

const message = h('p', { id: 'signin-message', class: 'message', role: 'alert', 'aria-live': 'assertive' });
const name = h('input', { id: 'name', name: 'name', type: 'text', autocomplete: 'username', required: true, autofocus: true, spellcheck: 'false' });
const password = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');

function say(text: string): void {
  message.textContent = text;
  message.hidden = text === '';
}

async function signIn(ev: Event): Promise<void> {
  ev.preventDefault();
  say('');
  submit.disabled = true;
  try {
    const res = await fetch('/_session', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ name: name.value, password: password.value }),
    });
    if (res.status === 401) return say('Wrong name or password.');
    if (!res.ok) {
      const body = await res.json().catch(() => ({})) as { reason?: string };
      return say(`CouchDB refused the sign-in: ${body.reason ?? res.status}`);
    }
    const me = await fetch('/_lively/console/me', { credentials: 'same-origin' });
    if (me.status === 403) {
      await fetch('/_session', { method: 'DELETE', credentials: 'same-origin' });
      return say('This account is not a CouchDB admin; the console is for admins only.');
    }
    if (!me.ok) return say(`The runtime did not accept the session (${me.status}).`);
    password.value = '';
    location.assign('/_lively/ui/');
  } catch (err) {
    say(`The runtime could not be reached: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    submit.disabled = false;
  }
}

const form = h('form', { class: 'signin', 'aria-labelledby': 'signin-title' },
  h('h1', { id: 'signin-title' }, 'LivelyCouch console'),
  h('p', { class: 'hint' }, 'Sign in with a CouchDB admin account.'),
  h('label', { for: 'name' }, 'Name'), name,
  h('label', { for: 'password' }, 'Password'), password,
  message,
  submit,
);
form.addEventListener('submit', (ev) => void signIn(ev));
say(new URLSearchParams(location.search).get('reason') === 'forbidden' ? 'This account is not a CouchDB admin; the console is for admins only.' : '');

document.getElementById('root')!.append(
  h('header', { class: 'topbar' }, h('span', { class: 'brand' }, 'LivelyCouch'), h('span', { class: 'spacer' }), themeToggle()),
  h('main', { id: 'main', class: 'signin-main' }, form),
);
