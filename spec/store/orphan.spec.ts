import { expect } from 'chai';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { embeddedStorePid } from '../support/couch.ts';

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

// Only meaningful where the suite runs the embedded store; not registered against COUCHDB_URL.
if (embeddedStorePid() !== undefined) describe('embedded store child (only when the suite runs on the embedded store)', function () {
  this.timeout(60_000);

  it('kill -9 the runtime that started it - the store child exits instead of outliving it', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lively-spec-orphan-'));
    const script = `import { EmbeddedStore } from ${JSON.stringify(path.resolve('src/store/embedded/supervisor.ts'))};
      const s = new EmbeddedStore({ dataDir: ${JSON.stringify(dataDir)}, memory: true });
      await s.start(); console.log(String(s.pid)); setInterval(() => {}, 1000);`;
    const parent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const childPid = await new Promise<number>((resolve, reject) => {
      parent.stdout!.setEncoding('utf8');
      parent.stdout!.once('data', (t: string) => resolve(Number(t.trim())));
      parent.once('exit', () => reject(new Error('parent exited early')));
    });
    expect(alive(childPid)).to.equal(true);
    parent.kill('SIGKILL');
    for (let i = 0; i < 100 && alive(childPid); i++) await new Promise((r) => setTimeout(r, 100));
    const survived = alive(childPid);
    if (survived) process.kill(childPid, 'SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
    expect(survived).to.equal(false);
  });
});
