/**
 * `livelycouch start` as a user runs it: its own embedded store on disk, killed under it;
 * SIGTERM with work in flight; SIGKILL leaving nothing behind.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import net from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { connect } from '../../src/store/couch.ts';
import { expandBatch } from '../../src/activations/batch.ts';
import { dayDbName } from '../../src/activations/record-days.ts';
import { activationTime } from '../../src/activations/reader.ts';
import { eventually } from '../support/runtime.ts';
import { adminHeaders } from '../support/couch.ts';
import { ended, removeDir } from '../support/cleanup.ts';

const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const att = (code: string, type = 'application/javascript') => ({ content_type: type, data: Buffer.from(code).toString('base64') });

interface Started { proc: ChildProcess; url: string; storeUrl: string; dataDir: string }

// every process this spec starts and every directory it makes, ended and removed after each test
const spawned: ChildProcess[] = [];
const made: string[] = [];
const tempDir = (prefix: string) => { const dir = mkdtempSync(path.join(os.tmpdir(), prefix)); made.push(dir); return dir; };

async function startCli(command: string[] = ['start'], readyLine = /listening on (\S+)/, opts: { dataDir?: string; group?: boolean; stderr?: string[] } = {}): Promise<Started> {
  const dataDir = opts.dataDir ?? tempDir('lively-cli-');
  const env = { ...process.env };
  delete env.COUCHDB_URL; // this spec is about the embedded store the CLI starts itself
  env.LIVELY_WORKER_RUN_AS = ''; // its python workers are on this user's PATH
  const proc = spawn(process.execPath, ['--no-node-snapshot', '--import', 'tsx', main, ...command, '--port', '0', '--data', dataDir, '--no-sample', '--log-level', 'warn'], { env, stdio: ['ignore', 'pipe', opts.stderr ? 'pipe' : 'inherit'], detached: opts.group === true });
  spawned.push(proc);
  if (opts.stderr) proc.stderr!.on('data', (d) => opts.stderr!.push(String(d)));
  let listening = '';
  const url = await new Promise<string>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`livelycouch ${command[0]} exited with ${code}`)));
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      const m = /listening on (\S+)/.exec(line);
      if (m) listening = m[1]!;
      if (readyLine.test(line)) resolve(listening);
    });
  });
  const state = JSON.parse(readFileSync(path.join(dataDir, 'runtime.json'), 'utf8')) as { storeUrl: string };
  return { proc, url, storeUrl: state.storeUrl, dataDir };
}

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };
const exited = (p: ChildProcess) => new Promise<number | null>((r) => (p.exitCode !== null ? r(p.exitCode) : p.once('exit', (code) => r(code))));

async function deploy(s: Started): Promise<void> {
  const nano = connect(s.storeUrl);
  await nano.use('lively_workers').bulk({ docs: [
    { _id: 'pid', type: 'python', delegate: 'main.py', _attachments: { 'main.py': att(`import json, os, sys, time
for line in sys.stdin:
    msg = json.loads(line)
    time.sleep(float(msg["parameters"].get("ms", 0)) / 1000)
    print(json.dumps({"result": {"pid": os.getpid()}}), flush=True)
`, 'text/x-python') } },
    // leaves a command running in the background, as a user's shell script may
    { _id: 'background', type: 'sh', delegate: 'main.sh', _attachments: { 'main.sh': att(`while IFS= read -r line; do
  sleep 288 &
  printf '{"result":{"sleep":%d}}\\n' "$!"
done
`, 'text/x-sh') } },
  ] });
  await nano.use<Record<string, unknown>>('lively_events').bulk({ docs: [
    { _id: 'pid', trigger: { '/pid': {} }, workers: { pid: {} } },
    { _id: 'background', trigger: { '/background': {} }, workers: { background: {} } },
  ] });
}

async function trigger(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await request(url, { headers });
  return { status: res.statusCode, body: await res.body.json() };
}

describe('livelycouch start (embedded store, real processes)', function () {
  this.timeout(60_000);

  it('survives a kill -9 of its embedded store: restarts it and triggers work again', async () => {
    const s = await startCli();
    try {
      await deploy(s);
      await eventually(async () => (await trigger(`${s.url}/_events/pid?wait=true`)).status === 200, 10_000, 'event deployed');
      const status = await trigger(`${s.url}/_lively/status`, adminHeaders(s.storeUrl));
      const storePid = status.body.store.pid as number;
      expect(alive(storePid)).to.equal(true);
      process.kill(storePid, 'SIGKILL');
      // Warm triggers never needed the store; the runtime must also bring the store back.
      await eventually(async () => {
        const st = await trigger(`${s.url}/_lively/status`, adminHeaders(s.storeUrl)).catch(() => undefined);
        return st?.status === 200 && typeof st.body.store.pid === 'number' && st.body.store.pid !== storePid && alive(st.body.store.pid);
      }, 20_000, 'a new store process');
      await eventually(async () => (await trigger(`${s.url}/_lively/health`)).status === 200, 20_000, 'healthy again');
      const r = await trigger(`${s.url}/_events/pid?wait=true`);
      expect(r.body.outcomes[0].status).to.equal('ok');
      // The events feed resumed: a new event works without a restart.
      await connect(s.storeUrl).use<Record<string, unknown>>('lively_events').insert({ _id: 'late', trigger: { '/late': {} }, workers: { pid: {} } });
      await eventually(async () => (await trigger(`${s.url}/_events/late?wait=true`)).status === 200, 10_000, 'event added after the restart');
    } finally {
      s.proc.kill('SIGTERM');
      await exited(s.proc);
    }
  });

  afterEach(async () => {
    for (const proc of spawned.splice(0)) await ended(proc);
    for (const dir of made.splice(0)) removeDir(dir);
  });

  async function warmUp(s: Started): Promise<{ status: number; body: any }> {
    let warm: { status: number; body: any } | undefined;
    await eventually(async () => (warm = await trigger(`${s.url}/_events/pid?wait=true`)).status === 200, 10_000, 'event deployed');
    return warm!;
  }

  it('SIGTERM lets a message in flight finish, then exits 0 with no worker process left', async () => {
    const s = await startCli();
    await deploy(s);
    const warm = await warmUp(s);
    const workerPid = warm.body.outcomes[0].result.pid as number;
    const inflight = trigger(`${s.url}/_events/pid?ms=600&wait=true`);
    await new Promise((r) => setTimeout(r, 200));
    s.proc.kill('SIGTERM');
    const r = await inflight;
    expect(r.status).to.equal(200);
    expect(r.body.outcomes[0]).to.include({ status: 'ok' });
    expect(r.body.outcomes[0].result.pid).to.equal(workerPid);
    expect(await exited(s.proc)).to.equal(0);
    await eventually(() => !alive(workerPid), 5_000, 'worker process gone');
  });

  it('SIGTERM leaves nothing a process worker started in the background (its process group goes with it)', async () => {
    const s = await startCli();
    await deploy(s);
    await warmUp(s);
    const r = await trigger(`${s.url}/_events/background?wait=true`);
    const sleepPid = r.body.outcomes[0].result.sleep as number;
    expect(alive(sleepPid)).to.equal(true);
    s.proc.kill('SIGTERM');
    expect(await exited(s.proc)).to.equal(0);
    await eventually(() => !alive(sleepPid), 5_000, 'the background command gone');
  });

  it('SIGKILL of the runtime leaves neither worker processes nor the store behind', async () => {
    const s = await startCli();
    await deploy(s);
    const warm = await warmUp(s);
    const workerPid = warm.body.outcomes[0].result.pid as number;
    const storePid = (await trigger(`${s.url}/_lively/status`, adminHeaders(s.storeUrl))).body.store.pid as number;
    expect(alive(workerPid) && alive(storePid)).to.equal(true);
    s.proc.kill('SIGKILL');
    await exited(s.proc);
    await eventually(() => !alive(workerPid), 10_000, 'worker process gone');
    await eventually(() => !alive(storePid), 10_000, 'store process gone');
  });

  it('dev <dir> starts a runtime, deploys the folder, and redeploys a changed worker file', async () => {
    const app = tempDir('lively-app-');
    mkdirSync(path.join(app, 'events'));
    mkdirSync(path.join(app, 'workers', 'hello'), { recursive: true });
    writeFileSync(path.join(app, 'events', 'hello.json'), JSON.stringify({ _id: 'hello', trigger: { '/hello': {} }, workers: { hello: {} } }));
    writeFileSync(path.join(app, 'workers', 'hello', 'doc.json'), JSON.stringify({ type: 'node', delegate: 'index.js' }));
    writeFileSync(path.join(app, 'workers', 'hello', 'index.js'), 'module.exports = async () => ({ v: 1 });');
    const s = await startCli(['dev', app], /^watching /);
    let r: { status: number; body: any } | undefined;
    await eventually(async () => (r = await trigger(`${s.url}/_events/hello?wait=true`)).status === 200, 10_000, 'deployed event');
    expect(r!.body.outcomes[0].result).to.deep.equal({ v: 1 });
    writeFileSync(path.join(app, 'workers', 'hello', 'index.js'), 'module.exports = async () => ({ v: 2 });');
    await eventually(async () => (await trigger(`${s.url}/_events/hello?wait=true`)).body.outcomes[0].result?.v === 2, 15_000, 'redeployed worker');
  });

  it('Ctrl-C (SIGINT to the whole process group) stops in order: the store is not restarted, and the last activations are written', async () => {
    const stderr: string[] = [];
    const s = await startCli(['start'], /listening on/, { group: true, stderr });
    await deploy(s);
    const warm = await warmUp(s);
    const activation = warm.body.activation as string;
    process.kill(-s.proc.pid!, 'SIGINT'); // as a terminal does: every process in the group
    expect(await exited(s.proc)).to.equal(0);
    expect(stderr.join('')).to.not.contain('restarting');
    // The same data directory, started again: the activation record is there.
    const again = await startCli(['start'], /listening on/, { dataDir: s.dataDir });
    const page = await connect(again.storeUrl).use<Record<string, any>>(dayDbName('lively_', activationTime(activation)!)).list({ include_docs: true });
    const ids = page.rows.flatMap((r) => (r.doc?.type === 'activations' ? expandBatch(r.doc as never).map((rec) => rec.activation) : []));
    expect(ids).to.include(activation);
  });
  /** Runs the CLI to its end: its exit code and what it wrote. */
  function runCli(args: string[], ms = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const env = { ...process.env };
    delete env.COUCHDB_URL;
    const proc = spawn(process.execPath, ['--no-node-snapshot', '--import', 'tsx', main, ...args, '--no-sample', '--log-level', 'warn'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout!.on('data', (d) => { stdout += String(d); });
    proc.stderr!.on('data', (d) => { stderr += String(d); });
    const timer = setTimeout(() => proc.kill('SIGKILL'), ms);
    return exited(proc).then((code) => { clearTimeout(timer); return { code, stdout, stderr }; });
  }

  it('a second start on a data directory in use fails at once with one line naming the running runtime\'s pid and URL', async () => {
    const s = await startCli();
    const second = await runCli(['start', '--port', '0', '--data', s.dataDir]);
    expect(second.code).to.equal(1);
    expect(second.stdout).to.equal('');
    expect(second.stderr).to.equal(`livelycouch start: the data directory ${s.dataDir} is in use by the runtime with pid ${s.proc.pid} at ${s.url}\n`);
    // the first runtime is untouched
    expect((await trigger(`${s.url}/_lively/health`)).status).to.equal(200);
  });

  it('a start on a busy port fails at once with one line, and leaves the data directory free', async () => {
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as net.AddressInfo).port;
    const dataDir = tempDir('lively-cli-');
    try {
      const r = await runCli(['start', '--port', String(port), '--host', '127.0.0.1', '--data', dataDir]);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.equal(`livelycouch start: port ${port} on 127.0.0.1 is in use by another program (choose another with --port)\n`);
    } finally {
      await new Promise<void>((r) => busy.close(() => r()));
    }
    // nothing holds the data directory now: a start there works
    const s = await startCli(['start'], /listening on/, { dataDir });
    expect((await trigger(`${s.url}/_lively/health`)).status).to.equal(200);
  });
});
