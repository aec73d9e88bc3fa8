/**
 * The command line as a user runs it, on the example app: `livelycouch start` on an embedded
 * store on disk, then `deploy`, `trigger`, `logs`, `status` and `dev` as separate processes.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { eventually } from '../support/runtime.ts';
import { kAdminName, kPasswordFile } from '../../src/store/embedded/contract.ts';

const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const exampleDir = fileURLToPath(new URL('../../examples/inbox', import.meta.url));
const kCommandNames = ['start', 'init', 'deploy', 'dev', 'trigger', 'status', 'logs'];

function cliEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  // This spec is about the embedded store the CLI starts itself, on disk.
  for (const k of ['COUCHDB_URL', 'LIVELY_URL', 'LIVELY_USER', 'LIVELY_PASSWORD', 'LIVELY_DATA']) delete env[k];
  // the example's python worker is found on this user's PATH (spec/security/credentials.spec.ts
  // covers process workers run as nobody)
  env.LIVELY_WORKER_RUN_AS = '';
  return env;
}

interface Ran { code: number | null; stdout: string; stderr: string }

/** Runs one CLI command to its end. */
function cli(args: string[], timeoutMs = 60_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--no-node-snapshot', '--import', 'tsx', main, ...args], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => { stdout += String(d); });
    proc.stderr.on('data', (d) => { stderr += String(d); });
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`livelycouch ${args.join(' ')} did not end`)); }, timeoutMs);
    proc.on('error', reject);
    proc.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

/** A long-running command (start, dev, logs -f): its output lines as they come. */
interface Running { proc: ChildProcess; out: string[]; err: string[]; waitFor(re: RegExp, ms?: number): Promise<string> }

function run(args: string[]): Running {
  const proc = spawn(process.execPath, ['--no-node-snapshot', '--import', 'tsx', main, ...args], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const r: Running = {
    proc, out: [], err: [],
    waitFor: (re, ms = 30_000) => eventually(() => r.out.some((l) => re.test(l)) || proc.exitCode !== null, ms, `a line ${re}`)
      .then(() => {
        const line = r.out.find((l) => re.test(l));
        if (!line) throw new Error(`livelycouch ${args[0]} exited with ${proc.exitCode}: ${r.err.join(' | ')}`);
        return line;
      }),
  };
  createInterface({ input: proc.stdout! }).on('line', (l) => r.out.push(l));
  createInterface({ input: proc.stderr! }).on('line', (l) => r.err.push(l));
  return r;
}

const exited = (p: ChildProcess) => new Promise<number | null>((res) => (p.exitCode !== null || p.signalCode !== null ? res(p.exitCode) : p.once('exit', (code) => res(code))));

const json = (s: string): any => JSON.parse(s);
const lines = (s: string) => s.split('\n').filter((l) => l !== '');

describe('livelycouch deploy/trigger/logs/dev on the example app (embedded store on disk, real processes)', function () {
  this.timeout(180_000);
  let dataDir: string;
  let runtime: Running;
  let url: string;
  let password: string;
  const admin = () => `Basic ${Buffer.from(`${kAdminName}:${password}`).toString('base64')}`;
  const data = () => ['--data-dir', dataDir];

  async function api(p: string, init: { method?: string; body?: string; auth?: boolean } = {}): Promise<{ status: number; body: any }> {
    const res = await request(`${url}${p}`, {
      method: (init.method ?? 'GET') as 'GET',
      headers: { ...(init.auth === false ? {} : { authorization: admin() }), ...(init.body ? { 'content-type': 'application/json' } : {}) },
      body: init.body,
    });
    const text = await res.body.text();
    return { status: res.statusCode, body: text ? JSON.parse(text) : undefined };
  }

  before(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'lively-app-cli-'));
    runtime = run(['start', '--port', '0', '--data', dataDir, '--no-sample', '--log-level', 'warn']);
    url = /listening on (\S+)/.exec(await runtime.waitFor(/listening on /))![1]!;
    password = readFileSync(path.join(dataDir, kPasswordFile), 'utf8').trim();
    // As the quick start does: the app's database is created through the runtime's proxy.
    expect((await api('/inbox', { method: 'PUT' })).status).to.equal(201);
  });

  after(async () => {
    if (runtime.proc.exitCode === null) {
      runtime.proc.kill('SIGTERM');
      await exited(runtime.proc);
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('deploy reports what it created; a second deploy reports no changes and writes nothing', async () => {
    const first = await cli(['deploy', exampleDir, ...data()]);
    expect(first.stderr).to.equal('');
    expect(first.code).to.equal(0);
    for (const l of ['created worker file_message', 'created worker classify', 'created worker digest', 'created event post_message', 'created event classify_message', 'created event digest']) {
      expect(lines(first.stdout)).to.include(l);
    }
    expect(lines(first.stdout).at(-1)).to.equal('6 created, 0 unchanged');
    const revs = async () => (await api('/lively_events/_all_docs')).body.rows.map((r: any) => `${r.id}@${r.value.rev}`).sort();
    const before = await revs();

    const again = await cli(['deploy', exampleDir, ...data()]);
    expect(again.code).to.equal(0);
    expect(again.stdout).to.not.match(/created|updated/);
    expect(lines(again.stdout).at(-1)).to.equal('no changes (6 unchanged)');
    const machine = await cli(['deploy', exampleDir, ...data(), '--json']);
    expect(json(machine.stdout).steps.map((s: any) => s.action)).to.deep.equal(Array(6).fill('unchanged'));
    expect(await revs()).to.deep.equal(before);
  });

  it('triggers each HTTP event with the CLI; the changes trigger fires for the filed message; logs and the API show them all', async () => {
    await eventually(async () => (await api('/_lively/status')).body.events.loaded >= 3, 10_000, 'events loaded');
    const posted = await cli(['trigger', 'inbox/messages', '--body', JSON.stringify({ from: 'ada', text: 'The build is down, urgent' }), '--wait', '--json', ...data()]);
    expect(posted.code, posted.stderr).to.equal(0);
    const post = json(posted.stdout);
    expect(post.outcomes[0]).to.include({ worker: 'file_message', status: 'ok' });
    const messageId = post.outcomes[0].result.id as string;
    expect((await api(`/inbox/${messageId}`)).body).to.include({ from: 'ada', text: 'The build is down, urgent' });

    const classified = json((await cli(['trigger', '/inbox/classify', '-d', '{"text":"all good here"}', '-w', '--json', ...data()])).stdout);
    expect(classified.outcomes[0]).to.include({ worker: 'classify', status: 'ok' });
    expect(classified.outcomes[0].result).to.deep.include({ label: 'normal', words: 3 });

    const counted = await cli(['trigger', 'inbox/digest', '--wait', ...data()]);
    expect(counted.code).to.equal(0);
    expect(counted.stdout).to.match(/^digest {2}ok {2}\d+ms$/m);
    expect(counted.stdout).to.contain('result: {"db":"inbox","messages":1}');

    // The python worker saw the document file_message wrote, through the changes trigger.
    let fromChanges: any;
    await eventually(async () => {
      const r = await cli(['logs', '--event', 'classify_message', '--json', ...data()]);
      fromChanges = lines(r.stdout).map(json).find((a) => a.trigger === 'changes' && a.workers[0].result?.id === messageId);
      return fromChanges !== undefined;
    }, 20_000, 'the changes trigger to classify the message');
    expect(fromChanges.workers[0].result).to.deep.include({ label: 'urgent' });
    expect(fromChanges.workers[0].logs.map((l: any) => l.msg)).to.include('urgent: message from ada');

    const ids = [post.activation, classified.activation, json((await cli(['trigger', 'inbox/digest', '--json', ...data()])).stdout).activation];
    await eventually(async () => {
      const r = await cli(['logs', '--limit', '50', ...data()]);
      return ids.every((id) => lines(r.stdout).some((l) => l.includes(id)));
    }, 10_000, 'every activation in logs');
    const readable = lines((await cli(['logs', '--limit', '50', ...data()])).stdout);
    const postLine = readable.find((l) => l.includes(post.activation))!;
    expect(postLine).to.match(/^\S+Z {2}\S+ {2}http POST \/inbox\/messages {2}post_message {2}file_message:ok {2}\d+ms$/);
    // Oldest first.
    expect(readable.indexOf(postLine)).to.be.below(readable.findIndex((l) => l.includes(classified.activation)));
    const viaApi = (await api('/_lively/activations?limit=50')).body.activations.map((a: any) => a.activation);
    expect(viaApi).to.include.members(ids);
    const byWorker = lines((await cli(['logs', '--worker', 'digest', '--json', ...data()])).stdout).map(json);
    expect(byWorker.length).to.be.above(0);
    expect(byWorker.every((a: any) => a.workers.some((w: any) => w.worker === 'digest'))).to.equal(true);

    const status = await cli(['status', ...data()]);
    expect(status.code).to.equal(0);
    expect(status.stdout).to.match(/^events {6}3 loaded, 0 invalid$/m);
    expect(status.stdout + status.stderr).to.not.contain(password);
  });

  it('logs -f prints each new activation once, oldest first', async () => {
    const follow = run(['logs', '-f', '--limit', '1', '--event', 'digest', ...data()]);
    try {
      await eventually(() => follow.out.length >= 1, 20_000, 'the last activation');
      const before = follow.out.length;
      const a = json((await cli(['trigger', 'inbox/digest', '--json', ...data()])).stdout).activation;
      const b = json((await cli(['trigger', 'inbox/digest', '--json', ...data()])).stdout).activation;
      await cli(['trigger', 'inbox/classify', '-d', '{"text":"not a digest"}', ...data()]);
      await eventually(() => follow.out.some((l) => l.includes(b)), 20_000, 'the followed activations');
      await new Promise((r) => setTimeout(r, 1_500)); // a few more polls: nothing is printed twice
      const fresh = follow.out.slice(before);
      expect(fresh.filter((l) => l.includes(a))).to.have.length(1);
      expect(fresh.filter((l) => l.includes(b))).to.have.length(1);
      expect(fresh.findIndex((l) => l.includes(a))).to.be.below(fresh.findIndex((l) => l.includes(b)));
      expect(fresh.every((l) => l.includes('  digest  '))).to.equal(true);
    } finally {
      follow.proc.kill('SIGINT');
      expect(await exited(follow.proc)).to.equal(0);
    }
  });

  it('dev pushes edits, new and deleted files and editor rename-writes; reports bad JSON and recovers; the schedule trigger fires', async () => {
    // A copy of the app whose schedule ticks every second.
    const app = mkdtempSync(path.join(os.tmpdir(), 'lively-inbox-'));
    cpSync(exampleDir, app, { recursive: true });
    const digestEvent = path.join(app, 'events', 'digest.json');
    const everySecond = readFileSync(digestEvent, 'utf8').replace('"every": "1m"', '"every": "1s"');
    writeFileSync(digestEvent, everySecond);
    const dev = run(['dev', app, ...data()]);
    try {
      await dev.waitFor(/^watching /);
      expect(dev.out).to.include('updated event digest');
      expect(dev.err).to.deep.equal([]);
      const digest = async () => json((await cli(['trigger', 'inbox/digest', '--wait', '--json', ...data()])).stdout).outcomes[0];

      // An editor's save: write a temporary file, rename it over the worker file.
      const code = path.join(app, 'workers', 'digest', 'digest.js');
      writeFileSync(`${code}.tmp`, readFileSync(code, 'utf8').replace('return { db, messages };', "return { db, messages, edited: 'yes' };"));
      renameSync(`${code}.tmp`, code);
      await eventually(async () => (await digest()).result?.edited === 'yes', 15_000, 'the edited worker');
      expect(dev.out).to.include('updated worker digest');

      // Half-typed JSON: reported in one line naming the file; the last good version keeps working.
      writeFileSync(digestEvent, '{ "_id": "digest", "trigger": {');
      await eventually(() => dev.err.some((l) => l.includes('events/digest.json') && l.includes('not valid JSON')), 15_000, 'the JSON error');
      expect(dev.err.every((l) => l.startsWith('livelycouch dev: '))).to.equal(true);
      expect((await digest()).status).to.equal('ok');
      writeFileSync(digestEvent, everySecond.replace('"/inbox/digest"', '"/inbox/count"'));
      await eventually(async () => (await cli(['trigger', 'inbox/count', ...data()])).code === 0, 15_000, 'the fixed event');
      await eventually(() => dev.out.some((l) => l.startsWith('fixed:')), 15_000, 'the fixed line');

      // Worker code that does not parse: named with its line and column, never pushed; the last good version keeps running.
      const good = readFileSync(code, 'utf8');
      const fixedBefore = dev.out.filter((l) => l.startsWith('fixed:')).length;
      writeFileSync(code, `${good}\nconst broken = ;\n`);
      await eventually(() => dev.err.some((l) => l.includes('workers/digest/digest.js:') && /Unexpected/.test(l)), 15_000, 'the syntax error');
      expect((await cli(['trigger', 'inbox/count', '--wait', '--json', ...data()])).stdout).to.contain('"status":"ok"');
      writeFileSync(code, good);
      await eventually(() => dev.out.filter((l) => l.startsWith('fixed:')).length > fixedBefore, 15_000, 'the fixed line after the syntax error');

      // A new event file, then its deletion.
      writeFileSync(path.join(app, 'events', 'ping.json'), JSON.stringify({ trigger: { '/inbox/ping': {} }, workers: { digest: {} } }));
      await eventually(async () => (await cli(['trigger', 'inbox/ping', ...data()])).code === 0, 15_000, 'the new event');
      expect(dev.out).to.include('created event ping');
      rmSync(path.join(app, 'events', 'ping.json'));
      await eventually(async () => (await cli(['trigger', 'inbox/ping', ...data()])).stderr.includes('404 LC_NO_EVENT'), 15_000, 'the deleted event gone');
      expect(dev.out).to.include('deleted event ping');

      // The schedule trigger (every 1s in this copy) fires on its own.
      await eventually(async () => {
        const r = await cli(['logs', '--event', 'digest', '--json', ...data()]);
        return lines(r.stdout).map(json).some((a) => a.trigger === 'schedule' && a.workers[0].status === 'ok' && a.workers[0].result?.edited === 'yes');
      }, 20_000, 'a scheduled digest');
    } finally {
      dev.proc.kill('SIGTERM');
      await exited(dev.proc);
      rmSync(app, { recursive: true, force: true });
    }
    // The runtime dev attached to is still serving.
    expect((await api('/_lively/health', { auth: false })).status).to.equal(200);
  });

  it('--help of every command prints its usage and exits 0', async () => {
    const all = await Promise.all(kCommandNames.map((c) => cli([c, '--help'])));
    all.forEach((r, i) => {
      expect(r.code, kCommandNames[i]).to.equal(0);
      expect(r.stdout.split('\n')[0]).to.match(new RegExp(`^usage: livelycouch ${kCommandNames[i]}\\b`));
      expect(r.stdout).to.contain('--help');
    });
    const top = await cli(['--help']);
    expect(top.code).to.equal(0);
    for (const c of kCommandNames) expect(top.stdout).to.match(new RegExp(`^ {2}${c}\\b`, 'm'));
  });

  it('a failing command exits non-zero with one line naming the reason; a bad folder writes nothing', async () => {
    expect((await cli(['deploy', exampleDir, ...data()])).code).to.equal(0);
    await eventually(async () => (await api('/_events/inbox/digest?wait=true', { auth: false })).status === 200, 10_000, 'the app deployed');
    const bad = mkdtempSync(path.join(os.tmpdir(), 'lively-bad-app-'));
    try {
      cpSync(exampleDir, bad, { recursive: true });
      writeFileSync(path.join(bad, 'events', 'zz_fresh.json'), JSON.stringify({ trigger: { '/fresh': {} }, workers: { digest: {} } }));
      writeFileSync(path.join(bad, 'workers', 'classify', 'doc.json'), '{ "type": "python", ');
      const cases: Array<[string[], RegExp]> = [
        [['deploy', exampleDir, '--bogus', ...data()], /^livelycouch deploy: unknown option --bogus/],
        [['deploy', ...data()], /^livelycouch deploy: missing <dir>/],
        [['deploy', bad, ...data()], /^livelycouch deploy: \S+workers\/classify\/doc\.json: not valid JSON/],
        [['deploy', path.join(bad, 'nowhere'), ...data()], /^livelycouch deploy: \S+nowhere: no such folder/],
        [['trigger', 'no/such/event', ...data()], /^livelycouch trigger: 404 LC_NO_EVENT/],
        [['trigger', 'inbox/messages', '--body', '{oops', ...data()], /^livelycouch trigger: --body is not valid JSON/],
        [['trigger', 'inbox/messages', '-d', '{"text":""}', '--wait', ...data()], /^livelycouch trigger: worker file_message ended error: LC_WORKER_ERROR post a JSON body/],
        [['logs', '--limit', 'many', ...data()], /^livelycouch logs: --limit must be an integer/],
        [['status', '--url', 'http://127.0.0.1:1', '--user', `${kAdminName}:${password}`], /^livelycouch status: no runtime answers at http:\/\/127\.0\.0\.1:1 /],
        [['frobnicate'], /^livelycouch: unknown command "frobnicate"/],
      ];
      const results = await Promise.all(cases.map(([args]) => cli(args)));
      results.forEach((r, i) => {
        const what = cases[i]![0].join(' ');
        expect(r.code, what).to.be.above(0);
        expect(lines(r.stderr), what).to.have.length(1);
        expect(r.stderr, what).to.match(cases[i]![1]);
        expect(r.stderr + r.stdout, what).to.not.contain(password);
      });
      // The failing worker's stack, under its error, names the line of the example that threw.
      const failed = results[cases.findIndex(([args]) => args.includes('{"text":""}'))]!;
      expect(failed.stdout).to.match(/\n {2}error: LC_WORKER_ERROR post a JSON body[^\n]*\n {4}at .*\(file_message\/index\.js:8:\d+\)\n/);
      // Nothing of the bad folder was written, not even its valid new event.
      expect((await api('/lively_events/zz_fresh')).status).to.equal(404);
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
  });
});
