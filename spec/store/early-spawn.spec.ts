/**
 * The embedded store's child spawned before the runtime has loaded (src/store/embedded/spawn.ts),
 * as bin/livelycouch.js does for `start` and `dev`: the supervisor's first start takes it over;
 * one that ended, or ends before it is ready, is replaced; one nobody takes is stopped. Real
 * store processes, in this process as the runtime's; spec/cli/build.spec.ts runs the bin itself.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { EmbeddedStore } from '../../src/store/embedded/supervisor.ts';
import { dropEarlyStore, spawnEarlyStore } from '../../src/store/embedded/spawn.ts';
import { removeDir } from '../support/cleanup.ts';
import { embeddedStorePid } from '../support/couch.ts';
import { eventually } from '../support/runtime.ts';

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

/** Pids of the store children this process has (the early one, or the supervisor's), but the suite's own store. */
function storeChildren(): number[] {
  const found: number[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (ppid === process.pid && Number(pid) !== embeddedStorePid() && /store-server\.js|embedded\/server\.ts/.test(cmd)) found.push(Number(pid));
    } catch { /* ended meanwhile */ }
  }
  return found;
}

async function welcome(store: EmbeddedStore): Promise<unknown> {
  const url = new URL(store.url);
  const res = await request(`${url.origin}/`);
  return res.body.json();
}

describe('the embedded store spawned early (before the runtime loads)', function () {
  this.timeout(60_000);
  const dirs: string[] = [];
  const stores: EmbeddedStore[] = [];
  const dataDir = () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lively-early-'));
    dirs.push(dir);
    return path.join(dir, 'data');
  };
  afterEach(async () => {
    dropEarlyStore();
    for (const s of stores.splice(0)) await s.stop();
    for (const d of dirs.splice(0)) removeDir(d);
  });

  it('the first start takes the early child over: the same process serves, and until then it held nothing', async () => {
    const dir = dataDir();
    spawnEarlyStore([], {});
    const [early] = storeChildren();
    expect(early, 'an early child').to.be.a('number');
    // it waits for its start: no data directory is touched, no port is held
    await new Promise((r) => setTimeout(r, 300));
    expect(existsSync(dir)).to.equal(false);
    const store = new EmbeddedStore({ dataDir: dir, memory: true });
    stores.push(store);
    await store.start();
    expect(store.pid).to.equal(early);
    expect(storeChildren()).to.deep.equal([early]);
    expect(await welcome(store)).to.include({ couchdb: 'Welcome' });
    expect(existsSync(path.join(dir, 'etc'))).to.equal(true);
  });

  it('an early child that ended before the start is replaced by a fresh one', async () => {
    spawnEarlyStore([], {});
    const [early] = storeChildren();
    process.kill(early!, 'SIGKILL');
    await eventually(() => !alive(early!), 5_000, 'the early child gone');
    const store = new EmbeddedStore({ dataDir: dataDir(), memory: true });
    stores.push(store);
    await store.start();
    expect(store.pid).to.not.equal(early);
    expect(await welcome(store)).to.include({ couchdb: 'Welcome' });
  });

  it('an early child that ends once taken over, before it is ready, is replaced and the start succeeds', async () => {
    spawnEarlyStore([], {});
    const [early] = storeChildren();
    const store = new EmbeddedStore({ dataDir: dataDir(), memory: true });
    stores.push(store);
    const started = store.start(); // takes the early child over at once, and sends it its start
    process.kill(early!, 'SIGKILL');
    await started;
    expect(store.pid).to.not.equal(early);
    expect(await welcome(store)).to.include({ couchdb: 'Welcome' });
  });

  it('an early child nobody takes over is stopped by dropEarlyStore; none is spawned for a CouchDB or --help', async () => {
    spawnEarlyStore([], {});
    const [early] = storeChildren();
    dropEarlyStore();
    await eventually(() => !alive(early!), 5_000, 'the early child gone');
    spawnEarlyStore(['start', '--couch', 'http://127.0.0.1:5984'], {});
    spawnEarlyStore(['start', '--couch=http://127.0.0.1:5984'], {});
    spawnEarlyStore(['start'], { COUCHDB_URL: 'http://127.0.0.1:5984' });
    spawnEarlyStore(['start', '--help'], {});
    expect(storeChildren()).to.deep.equal([]);
  });
});
