/**
 * The built command: scripts/build.ts builds dist/ and runs every scripts/build-*.ts part;
 * bin/livelycouch.js runs dist/ — the CLI, the embedded store's child, the thread runtime — and
 * rebuilds a missing or stale dist/ (or runs the sources through tsx when it cannot).
 * Each spec works in a copy of the package in a temp folder (node_modules linked), so the
 * checkout's own dist/ is never touched while other specs or a benchmark use it.
 */
import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { couchUrl, dropPrefix, uniquePrefix } from '../support/couch.ts';
import { eventually } from '../support/runtime.ts';

const kRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const kCopied = ['bin', 'src', 'workers-runtime', 'examples', 'templates', 'types', 'schemas', 'scripts', 'package.json', '.npmignore', 'README.md'];
const kVersion = (JSON.parse(readFileSync(path.join(kRoot, 'package.json'), 'utf8')) as { version: string }).version;

interface Run { status: number | null; stdout: string; stderr: string }

/** A copy of the package with its own (empty) dist/ and this checkout's node_modules. */
function packageCopy(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lively-build-'));
  for (const name of kCopied) {
    cpSync(path.join(kRoot, name), path.join(dir, name), {
      recursive: true,
      filter: (src) => !src.includes('__pycache__') && !/scripts\/build-[^/]+\.ts$/.test(src),
    });
  }
  symlinkSync(path.join(kRoot, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

function env(): NodeJS.ProcessEnv {
  const e = { ...process.env };
  delete e.COUCHDB_URL;
  e.LIVELY_WORKER_RUN_AS = '';
  return e;
}

function run(dir: string, args: string[], nodeArgs: string[] = []): Run {
  const r = spawnSync(process.execPath, [...nodeArgs, ...args], { cwd: dir, env: env(), encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const bin = (dir: string, ...args: string[]) => run(dir, [path.join(dir, 'bin/livelycouch.js'), ...args]);
const build = (dir: string) => run(dir, ['--import', 'tsx', path.join(dir, 'scripts/build.ts')]);

function built(dir: string): { startedAt: number; outputs: string[]; inputs: string[] } {
  return JSON.parse(readFileSync(path.join(dir, 'dist/inputs.json'), 'utf8'));
}

/** Command lines of this user's processes that mention `text`. */
function processesWith(text: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmd.includes(text)) found.push(cmd);
    } catch { /* ended meanwhile */ }
  }
  return found;
}

/** `bin/livelycouch.js start …` started without --no-node-snapshot, as a shell runs it; resolves with its URL. */
async function startBin(dir: string, args: string[], opts: { nodeArgs?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<{ proc: ChildProcess; url: string; stderr: string[] }> {
  const stderr: string[] = [];
  const proc = spawn(process.execPath, [...opts.nodeArgs ?? [], path.join(dir, 'bin/livelycouch.js'), 'start', '--port', '0', '--log-level', 'warn', ...args], { cwd: dir, env: opts.env ?? env(), stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stderr!.on('data', (d) => stderr.push(String(d)));
  const url = await new Promise<string>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`livelycouch start exited with ${code}: ${stderr.join('')}`)));
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      const m = /listening on (\S+)/.exec(line);
      if (m) resolve(m[1]!);
    });
  });
  return { proc, url, stderr };
}

async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  await exited;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

describe('the built command (scripts/build.ts, bin/livelycouch.js, dist/)', function () {
  this.timeout(180_000);
  let dir: string;
  before(function () {
    dir = packageCopy();
    const r = build(dir);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/built dist\/ \(cli, store-server, store-spawn, thread-runtime\) from \d+ files/);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('package.json builds at install (prepare) and `npm start` runs the bin, not tsx', () => {
    const pkg = JSON.parse(readFileSync(path.join(kRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string>; bin: Record<string, string> };
    expect(pkg.scripts.prepare).to.equal('node --import tsx scripts/build.ts');
    expect(pkg.scripts.start).to.equal('node --no-node-snapshot bin/livelycouch.js start');
    expect(pkg.bin.livelycouch).to.equal('bin/livelycouch.js');
    expect(readFileSync(path.join(kRoot, '.gitignore'), 'utf8').split('\n')).to.include('/dist/');
  });

  it('runs from dist/ without a word on stderr when the build is fresh: --version, --help', () => {
    const v = bin(dir, '--version');
    expect(v).to.deep.include({ status: 0, stdout: `livelycouch ${kVersion}\n`, stderr: '' });
    const h = bin(dir, '--help');
    expect(h.status).to.equal(0);
    expect(h.stderr).to.equal('');
    expect(h.stdout).to.match(/^usage: livelycouch <command>/);
  });

  it('start (re-run with --no-node-snapshot, the store child and the thread runtime from dist/), deploy and trigger against a real runtime', async () => {
    const data = mkdtempSync(path.join(os.tmpdir(), 'lively-build-data-'));
    const prefix = uniquePrefix();
    const s = await startBin(dir, ['--data', data]);
    try {
      // the command, run again by the bin with the flag isolates need, and the embedded store, both built
      expect(processesWith(`--no-node-snapshot ${path.join(dir, 'dist/cli.js')} start`)).to.have.length(1);
      expect(processesWith(path.join(dir, 'dist/store-server.js'))).to.have.length(1);
      expect(processesWith(path.join(dir, 'src/store/embedded/server.ts'))).to.deep.equal([]);

      // deploy into the suite's store (embedded or CouchDB) and trigger through a runtime on it
      const deploy = bin(dir, 'deploy', path.join(dir, 'examples/hello'), '--couch', couchUrl(), '--prefix', prefix);
      expect(deploy.status, deploy.stderr).to.equal(0);
      expect(deploy.stdout).to.match(/send_email/);
      const onSuite = await startBin(dir, ['--data', path.join(data, 'suite'), '--couch', couchUrl(), '--prefix', prefix, '--no-sample']);
      try {
        const t = bin(dir, 'trigger', 'email_event', '--wait', '--url', onSuite.url);
        expect(t.status, t.stderr).to.equal(0);
        expect(t.stdout).to.match(/^200 activation \S+ \(events: email_event; workers: send_email\)\nsend_email {2}ok/);
        expect(t.stdout).to.include('result: {"from":"noreply@example.com","to":"support@yourcompany.com","subject":"Hello from LivelyCouch"}');
      } finally {
        await stop(onSuite.proc);
      }
      // the thread runtime the node worker ran in is dist/thread-runtime.js, copied under its hash
      const threadRuntime = readFileSync(path.join(dir, 'dist/thread-runtime.js'));
      const copies = filesUnder(path.join(data, 'suite')).filter((f) => /thread-runtime-[0-9a-f]+\.mjs$/.test(f));
      expect(copies).to.have.length(1);
      expect(readFileSync(copies[0]!).equals(threadRuntime)).to.equal(true);
    } finally {
      await stop(s.proc);
      await dropPrefix(prefix);
      rmSync(data, { recursive: true, force: true });
    }
    expect(s.stderr.join('')).to.not.match(/rebuil|TypeScript sources/);
  });

  it('`npm start`\'s command spawns the store\'s child before the runtime loads, and the runtime takes it over; `dev` beside a running runtime spawns none that stays', async () => {
    const data = mkdtempSync(path.join(os.tmpdir(), 'lively-build-data-'));
    const e = { ...env(), LIVELY_SPEC_TOKEN: 'not-for-the-store' };
    const s = await startBin(dir, ['--data', data, '--no-sample', '--log-level', 'info'], { nodeArgs: ['--no-node-snapshot'], env: e });
    try {
      const started = s.stderr.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'embedded store started');
      expect(started, s.stderr.join('')).to.include({ spawnedEarly: true });
      // the bundled store says nothing on its stderr as it starts (node's DEP0005 for express-pouchdb's Buffer() is dropped)
      expect(s.stderr.join('')).to.not.contain('embedded store stderr');
      const stores = processesWith(path.join(dir, 'dist/store-server.js'));
      expect(stores).to.have.length(1);
      const pid = started!.pid as number;
      expect(readFileSync(`/proc/${pid}/status`, 'utf8')).to.match(new RegExp(`^PPid:\\s+${s.proc.pid}$`, 'm'));
      // spawned before the runtime read its configuration, still without credentials
      expect(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')).to.not.include('LIVELY_SPEC_TOKEN=not-for-the-store');

      // dev on the same data directory uses that runtime: the child its command spawned is stopped
      const devOut: string[] = [];
      const dev = spawn(process.execPath, ['--no-node-snapshot', path.join(dir, 'bin/livelycouch.js'), 'dev', path.join(dir, 'examples/hello'), '--data', data], { cwd: dir, env: env(), stdio: ['ignore', 'pipe', 'inherit'] });
      try {
        await new Promise<void>((resolve, reject) => {
          dev.once('exit', (code) => reject(new Error(`dev exited with ${code}: ${devOut.join('')}`)));
          createInterface({ input: dev.stdout! }).on('line', (line) => { devOut.push(line); if (line.startsWith('watching ')) resolve(); });
        });
        await eventually(() => processesWith(path.join(dir, 'dist/store-server.js')).length === 1, 5_000, 'one store child: the runtime\'s');
      } finally {
        await stop(dev);
      }
    } finally {
      await stop(s.proc);
      rmSync(data, { recursive: true, force: true });
    }
  });

  it('rebuilds dist/ first when a source is newer than the build, and says so on stderr', () => {
    const before = built(dir).startedAt;
    const later = new Date(Date.now() + 5_000);
    utimesSync(path.join(dir, 'src/cli/args.ts'), later, later);
    const r = bin(dir, '--version');
    expect(r.status).to.equal(0);
    expect(r.stdout).to.equal(`livelycouch ${kVersion}\n`);
    expect(r.stderr).to.match(/^livelycouch: src\/cli\/args\.ts changed since the build; rebuilt dist\/ in \d+ ms\n$/);
    expect(built(dir).startedAt).to.be.above(before);
    // the file's time back before the build: fresh, nothing rebuilt
    utimesSync(path.join(dir, 'src/cli/args.ts'), new Date(before), new Date(before));
    expect(bin(dir, '--version').stderr).to.equal('');
  });

  it('rebuilds a missing dist/, and one whose files are gone', () => {
    rmSync(path.join(dir, 'dist'), { recursive: true });
    const r = bin(dir, '--help');
    expect(r.status).to.equal(0);
    expect(r.stderr).to.match(/^livelycouch: dist\/ is not built; rebuilt dist\/ in \d+ ms\n$/);
    expect(existsSync(path.join(dir, 'dist/cli.js'))).to.equal(true);

    rmSync(path.join(dir, 'dist/store-server.js'));
    const again = bin(dir, '--version');
    expect(again.stderr).to.match(/^livelycouch: dist\/store-server\.js is missing; rebuilt dist\/ in \d+ ms\n$/);
    expect(existsSync(path.join(dir, 'dist/store-server.js'))).to.equal(true);
  });

  it('runs the TypeScript sources through tsx when dist/ cannot be rebuilt, saying why', () => {
    rmSync(path.join(dir, 'dist'), { recursive: true });
    writeFileSync(path.join(dir, 'dist'), 'a file where the build folder belongs\n');
    try {
      const r = bin(dir, '--version');
      expect(r.status).to.equal(0);
      expect(r.stdout).to.equal(`livelycouch ${kVersion}\n`);
      expect(r.stderr).to.match(/^livelycouch: dist\/ is not built and rebuilding it failed \(.+\); running the TypeScript sources, which start slower\n$/);
    } finally {
      rmSync(path.join(dir, 'dist'), { force: true });
    }
    expect(build(dir).status).to.equal(0);
  });

  it('runs every scripts/build-*.ts part after the bundles, in name order, with the package root', () => {
    const log = path.join(dir, 'parts.log');
    for (const name of ['b', 'a']) {
      writeFileSync(path.join(dir, `scripts/build-${name}.ts`), `import { appendFileSync } from 'node:fs';
import { existsSync } from 'node:fs';
export default async function build(root: string): Promise<void> {
  appendFileSync(${JSON.stringify(log)}, \`${name} \${root} \${existsSync(root + '/dist/cli.js')}\\n\`);
}
`);
    }
    try {
      const r = build(dir);
      expect(r.status, r.stderr).to.equal(0);
      expect(readFileSync(log, 'utf8')).to.equal(`a ${dir} true\nb ${dir} true\n`);
      expect(r.stdout).to.match(/built a \(scripts\/build-a\.ts\) in \d+ ms\nlivelycouch build: built b \(scripts\/build-b\.ts\)/);
    } finally {
      rmSync(path.join(dir, 'scripts/build-a.ts'));
      rmSync(path.join(dir, 'scripts/build-b.ts'));
      rmSync(log, { force: true });
    }
  });

  it('fails the build, naming the part, when a part throws or exports no build function', () => {
    const part = path.join(dir, 'scripts/build-broken.ts');
    try {
      writeFileSync(part, `export default async function build(): Promise<void> { throw new Error('no console today'); }\n`);
      const thrown = build(dir);
      expect(thrown.status).to.equal(1);
      expect(thrown.stderr).to.equal('livelycouch build: scripts/build-broken.ts failed: no console today\n');
      writeFileSync(part, `export const build = 1;\n`);
      const none = build(dir);
      expect(none.status).to.equal(1);
      expect(none.stderr).to.equal('livelycouch build: scripts/build-broken.ts has no default export function build(root)\n');
    } finally {
      rmSync(part, { force: true });
    }
  });

  it('a packed package carries dist/ (an install from the registry runs no prepare)', () => {
    const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).to.equal(0);
    const files = (JSON.parse(r.stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path);
    for (const f of ['bin/livelycouch.js', 'scripts/bundle.js', 'dist/cli.js', 'dist/cli.js.map', 'dist/store-server.js', 'dist/thread-runtime.js', 'dist/inputs.json']) {
      expect(files).to.include(f);
    }
    expect(files.filter((f) => f.startsWith('node_modules/'))).to.deep.equal([]);
  });
});
