/**
 * Hole 4 of the security review: credentials within reach of worker code. Thread workers are
 * trusted code (they run inside the runtime), but nothing hands them credentials by accident:
 * pool threads get their own environment without credentials; the runtime removes credentials
 * from its own environment once read; the embedded store gets its admin password over IPC, so
 * it is not in /proc/<pid>/environ; and a runtime running as root runs process workers as an
 * unprivileged user (`nobody` by default) who cannot read the data directory.
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { kDefaultConfig } from '../../src/config/index.ts';
import type { Runtime } from '../../src/runtime.ts';
import { removeCredentials, withoutCredentials } from '../../src/shared/credentials.ts';
import { EmbeddedStore } from '../../src/store/embedded/supervisor.ts';
import { resolveRunAs } from '../../src/workers/run-as.ts';
import { couchUrl, dropPrefix, uniquePrefix } from '../support/couch.ts';
import { eventually, startRuntime } from '../support/runtime.ts';

const att = (code: string, type = 'application/javascript') => ({ content_type: type, data: Buffer.from(code).toString('base64') });

async function fire(rt: Runtime, p: string): Promise<any> {
  return (await fetch(`${rt.url}/_events${p}?wait=true`)).json();
}

describe('security: credentials out of workers\' reach', function () {
  this.timeout(60_000);
  const adminPassword = decodeURIComponent(new URL(couchUrl()).password);

  it('removeCredentials takes COUCHDB_URL, LIVELY_* users, passwords, secrets and tokens, and URLs with a password out of an environment, and nothing else', () => {
    const env: NodeJS.ProcessEnv = { COUCHDB_URL: 'http://a:b@h', LIVELY_USER: 'admin:pw', LIVELY_PASSWORD: 'pw', LIVELY_STORE_SECRET: 's', LIVELY_API_TOKEN: 't', BACKUP_URL: 'https://u:p@backup.example', LIVELY_PORT: '1', PATH: '/bin', HOME: '/root', DOCS: 'https://example.com/a' };
    expect(withoutCredentials(env)).to.deep.equal({ LIVELY_PORT: '1', PATH: '/bin', HOME: '/root', DOCS: 'https://example.com/a' });
    expect(removeCredentials(env).sort()).to.deep.equal(['BACKUP_URL', 'COUCHDB_URL', 'LIVELY_API_TOKEN', 'LIVELY_PASSWORD', 'LIVELY_STORE_SECRET', 'LIVELY_USER']);
    expect(env).to.deep.equal({ LIVELY_PORT: '1', PATH: '/bin', HOME: '/root', DOCS: 'https://example.com/a' });
  });

  it('a thread worker reaching the real process finds no credentials in its environment, though the runtime\'s has them', async () => {
    const prefix = uniquePrefix();
    const saved = { COUCHDB_URL: process.env.COUCHDB_URL, LIVELY_PASSWORD: process.env.LIVELY_PASSWORD };
    process.env.COUCHDB_URL = couchUrl();
    process.env.LIVELY_PASSWORD = adminPassword || 'planted-password';
    let rt: Runtime | undefined;
    try {
      rt = await startRuntime({ config: { dbPrefix: prefix } });
      await rt.db.workers.insert({ _id: 'snoop', type: 'node', delegate: 'index.js', _attachments: { 'index.js': att(`module.exports = async () => {
  const seen = [];
  const proto = Object.getPrototypeOf(process);
  if (proto && proto.env) seen.push(proto.env);
  seen.push(require('node:process').env);
  return { envs: seen.map((e) => JSON.stringify(e)) };
};`) } } as never);
      await rt.db.events.insert({ _id: 'snoop', trigger: { '/snoop': {} }, workers: { snoop: {} } } as never);
      await eventually(() => !!rt!.catalog.get('snoop'), 5_000, 'event loaded');
      const reply = await fire(rt, '/snoop');
      expect(reply.outcomes[0].status, JSON.stringify(reply)).to.equal('ok');
      const envs: string[] = reply.outcomes[0].result.envs;
      expect(envs.length).to.be.at.least(1);
      expect(envs.join('\n')).to.contain('PATH'); // the real environment was reached
      for (const e of envs) {
        const parsed = JSON.parse(e) as Record<string, string>;
        expect(parsed).to.not.have.property('COUCHDB_URL');
        expect(parsed).to.not.have.property('LIVELY_PASSWORD');
        if (adminPassword) expect(e).to.not.contain(adminPassword);
      }
    } finally {
      for (const [k, v] of Object.entries(saved)) { if (v === undefined) delete process.env[k]; else process.env[k] = v; }
      await rt?.stop();
      await dropPrefix(prefix);
    }
  });

  it('the embedded store gets its admin password over IPC: not in /proc/<pid>/environ, and it still needs it', async function () {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lively-environ-'));
    const store = new EmbeddedStore({ dataDir: dir, memory: true });
    await store.start();
    try {
      const password = decodeURIComponent(new URL(store.url).password);
      const environ = readFileSync(`/proc/${store.pid}/environ`, 'utf8');
      expect(environ).to.contain('PATH='); // the child's environment was read
      expect(environ).to.not.contain(password);
      const origin = new URL(store.url).origin;
      expect((await fetch(`${origin}/_all_dbs`)).status).to.equal(401);
      expect((await fetch(`${origin}/_all_dbs`, { headers: { authorization: `Basic ${Buffer.from(`lively:${password}`).toString('base64')}` } })).status).to.equal(200);
    } finally {
      await store.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('as root, process workers run as nobody by default and cannot read the data directory; their own files they can', async () => {
    if (process.getuid?.() !== 0) {
      // not root: there is nobody to switch to, and the setting changes nothing
      expect(resolveRunAs(kDefaultConfig.workerUser)).to.equal(undefined);
      return;
    }
    expect(kDefaultConfig.workerUser).to.equal('nobody');
    const prefix = uniquePrefix();
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lively-runas-'));
    writeFileSync(path.join(dataDir, 'planted.secret'), 'root-only', { mode: 0o644 });
    let rt: Runtime | undefined;
    try {
      rt = await startRuntime({ config: { dbPrefix: prefix, dataDir, workerUser: kDefaultConfig.workerUser } });
      await rt.db.workers.insert({ _id: 'who', type: 'sh', delegate: 'main.sh', _attachments: {
        'main.sh': att(`read line
uid=$(id -u)
if cat "$LIVELY_DATA_DIR/planted.secret" >/dev/null 2>&1; then planted=read; else planted=refused; fi
if cat "$LIVELY_DATA_DIR/instance" >/dev/null 2>&1; then instance=read; else instance=refused; fi
if ls "$LIVELY_DATA_DIR" >/dev/null 2>&1; then listing=read; else listing=refused; fi
if ls "$LIVELY_DATA_DIR/cache" >/dev/null 2>&1; then cache=read; else cache=refused; fi
own=$(cat ./note.txt)
echo "{\\"result\\": {\\"uid\\": $uid, \\"planted\\": \\"$planted\\", \\"instance\\": \\"$instance\\", \\"listing\\": \\"$listing\\", \\"cache\\": \\"$cache\\", \\"own\\": \\"$own\\"}}"
`, 'text/x-sh'), 'note.txt': att('mine', 'text/plain') },
        env: { LIVELY_DATA_DIR: dataDir } } as never);
      await rt.db.events.insert({ _id: 'who', trigger: { '/who': {} }, workers: { who: {} } } as never);
      await eventually(() => !!rt!.catalog.get('who'), 5_000, 'event loaded');
      const reply = await fire(rt, '/who');
      expect(reply.outcomes[0].status, JSON.stringify(reply.outcomes[0])).to.equal('ok');
      expect(reply.outcomes[0].result).to.deep.equal({ uid: 65534, planted: 'refused', instance: 'refused', listing: 'refused', cache: 'refused', own: 'mine' });
    } finally {
      await rt?.stop();
      await dropPrefix(prefix);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
