/**
 * Hole 5 of the security review: the embedded store let anyone sign up in `_users`, so an event
 * with `"auth": "user"` was open to anyone. Sign-up is off by default (`_users` is for the
 * store admin, as on Apache CouchDB 3, whose `_users` is created admin-only); `signup: true`
 * (LIVELY_SIGNUP=1) turns it on. Each case starts its own embedded store, whatever the suite's.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EmbeddedStore } from '../../src/store/embedded/supervisor.ts';
import { configFromEnv, makeConfig } from '../../src/config/index.ts';
import { basicAuth } from '../support/couch.ts';

async function withStore(signup: boolean | undefined, fn: (origin: string, admin: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lively-signup-'));
  const store = new EmbeddedStore({ dataDir: dir, memory: true, ...(signup === undefined ? {} : { signup }) });
  await store.start();
  try {
    const u = new URL(store.url);
    await fn(u.origin, basicAuth(decodeURIComponent(u.username), decodeURIComponent(u.password)));
  } finally {
    await store.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const signUp = (origin: string, name: string, headers: Record<string, string> = {}) => fetch(`${origin}/_users/org.couchdb.user:${name}`, {
  method: 'PUT', headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify({ _id: `org.couchdb.user:${name}`, name, password: 'pw-1234', roles: [], type: 'user' }),
});

describe('security: anonymous sign-up on the embedded store', function () {
  this.timeout(60_000);

  it('is off by default: an anonymous PUT into _users is 401, reading it too; the admin still creates users, who log in', async () => {
    await withStore(undefined, async (origin, admin) => {
      const res = await signUp(origin, 'mallory');
      expect(res.status).to.equal(401);
      expect((await fetch(`${origin}/_users/_all_docs`)).status).to.equal(401);
      expect((await signUp(origin, 'alice', { authorization: admin })).status).to.equal(201);
      // a user may not create another user either
      expect((await signUp(origin, 'bob', { authorization: basicAuth('alice', 'pw-1234') })).status).to.equal(403);
      const session = await (await fetch(`${origin}/_session`, { headers: { authorization: basicAuth('alice', 'pw-1234') } })).json() as { userCtx: { name: string } };
      expect(session.userCtx.name).to.equal('alice');
      const mallory = await fetch(`${origin}/_session`, { headers: { authorization: basicAuth('mallory', 'pw-1234') } });
      expect(mallory.status).to.equal(401);
    });
  });

  it('signup: true (LIVELY_SIGNUP=1) lets anyone sign up', async () => {
    expect(makeConfig(configFromEnv({ LIVELY_SIGNUP: '1' })).signup).to.equal(true);
    expect(makeConfig(configFromEnv({})).signup).to.equal(false);
    await withStore(true, async (origin) => {
      expect((await signUp(origin, 'carol')).status).to.equal(201);
    });
  });
});
