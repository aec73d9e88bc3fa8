/**
 * The runtime's own logger: one JSON object per line in production, a readable line in a
 * terminal, levels, and central redaction of secrets whatever a caller hands it.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createLogger, logFormatFromEnv, redact, redactText, kRedacted } from '../../src/shared/logger.ts';
import { isLivelyError } from '../../src/shared/errors.ts';
import { ended, removeDir } from '../support/cleanup.ts';

function capture(opts: Parameters<typeof createLogger>[0] = 'debug') {
  const lines: string[] = [];
  const logger = createLogger(typeof opts === 'string' ? { level: opts, write: (l) => lines.push(l) } : { ...opts, write: (l) => lines.push(l) });
  return { logger, lines };
}

describe('log: formats and levels', () => {
  it('json: one parseable line per event with t, level, msg first and the fields after', () => {
    const { logger, lines } = capture({ level: 'debug', format: 'json' });
    logger.info('worker started', { worker: 'w', n: 3, nested: { ok: true } });
    logger.error('two\nlines', { stack: 'Error: x\n    at y' });
    expect(lines).to.have.length(2);
    for (const l of lines) expect(l).to.not.contain('\n');
    const a = JSON.parse(lines[0]!);
    expect(Object.keys(a).slice(0, 3)).to.deep.equal(['t', 'level', 'msg']);
    expect(a).to.deep.include({ level: 'info', msg: 'worker started', worker: 'w', n: 3, nested: { ok: true } });
    expect(new Date(a.t).toISOString()).to.equal(a.t);
    expect(JSON.parse(lines[1]!)).to.include({ level: 'error', msg: 'two\nlines', stack: 'Error: x\n    at y' });
  });

  it('a field cannot overwrite t, level or msg', () => {
    const { logger, lines } = capture({ level: 'info', format: 'json' });
    logger.warn('real', { msg: 'fake', level: 'debug', t: 'then' });
    expect(JSON.parse(lines[0]!)).to.include({ msg: 'real', level: 'warn' });
  });

  it('levels: below the minimum nothing is written; silent writes nothing at all', () => {
    const { logger, lines } = capture({ level: 'warn', format: 'json' });
    logger.debug('d');
    logger.info('i');
    logger.warn('w');
    logger.error('e');
    expect(lines.map((l) => JSON.parse(l).msg)).to.deep.equal(['w', 'e']);
    const silent = capture('silent');
    silent.logger.error('nothing');
    expect(silent.lines).to.deep.equal([]);
  });

  it('pretty: time, padded level, message, key=value fields, multi-line values indented below; colour only when asked', () => {
    const { logger, lines } = capture({ level: 'debug', format: 'pretty', color: false });
    logger.warn('store restarted', { pid: 42, reason: 'killed by signal', ok: true, stack: 'Error: boom\n    at here' });
    const [first, ...below] = lines[0]!.split('\n');
    expect(first).to.match(/^\d\d:\d\d:\d\d\.\d{3} WARN  store restarted pid=42 reason="killed by signal" ok=true$/);
    expect(below).to.deep.equal(['    Error: boom', '        at here']);
    expect(lines[0]).to.not.contain('\x1b[');
    const coloured = capture({ level: 'debug', format: 'pretty', color: true });
    coloured.logger.error('bad', { a: 1 });
    expect(coloured.lines[0]).to.contain('\x1b[31mERROR');
  });

  it('the format follows LIVELY_LOG_FORMAT, else whether stderr is a terminal; a wrong value is a clear error', () => {
    expect(logFormatFromEnv({}, true)).to.equal('pretty');
    expect(logFormatFromEnv({}, false)).to.equal('json');
    expect(logFormatFromEnv({ LIVELY_LOG_FORMAT: 'json' }, true)).to.equal('json');
    expect(logFormatFromEnv({ LIVELY_LOG_FORMAT: 'pretty' }, false)).to.equal('pretty');
    let err: unknown;
    try { logFormatFromEnv({ LIVELY_LOG_FORMAT: 'xml' }, false); } catch (e) { err = e; }
    expect(isLivelyError(err, 'LC_CONFIG')).to.equal(true);
    expect((err as Error).message).to.equal('LIVELY_LOG_FORMAT must be "json" or "pretty", got "xml"');
  });

  it('a broken sink or unserialisable fields never throw into the caller', () => {
    const broken = createLogger({ level: 'info', format: 'json', write: () => { throw new Error('disk full'); } });
    expect(() => broken.info('x')).to.not.throw();
    const { logger, lines } = capture({ level: 'info', format: 'json' });
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const hostile = Object.defineProperty({}, 'boom', { enumerable: true, get() { throw new Error('getter'); } });
    logger.info('odd fields', { cyclic, big: 10n, fn: () => 1, hostile, inf: Infinity });
    const line = JSON.parse(lines[0]!);
    expect(line.cyclic).to.deep.equal({ a: 1, self: '[circular]' });
    expect(line.big).to.equal('10');
    expect(line.hostile).to.equal('[unreadable]');
    expect(line.inf).to.equal('Infinity');
  });
});

describe('log: redaction of secrets', () => {
  const secret = 'Sup3r-s3cret:pw';
  const enc = encodeURIComponent(secret);
  const basic = Buffer.from(`admin:${secret}`).toString('base64');

  it('redacts URL passwords, Basic/Bearer credentials, AuthSession cookies, secret query parameters and JSON password fields in any text', () => {
    const cases: Array<[string, string]> = [
      [`connecting to http://admin:${enc}@127.0.0.1:5984/db`, `connecting to http://admin:${kRedacted}@127.0.0.1:5984/db`],
      [`https://:${enc}@couch.example.com`, `https://:${kRedacted}@couch.example.com`],
      [`two http://a:${enc}@h1/x and http://b:${enc}@h2`, `two http://a:${kRedacted}@h1/x and http://b:${kRedacted}@h2`],
      [`raw http://admin:p@ss@host/ too`, `raw http://admin:${kRedacted}@host/ too`],
      [`Authorization: Basic ${basic}`, `Authorization: Basic ${kRedacted}`],
      [`Bearer eyJhbGciOi.eyJzdWIi.sig`, `Bearer ${kRedacted}`],
      [`cookie: theme=dark; AuthSession=Ym9iOjVGQTM6ZGVhZGJlZWY; x=1`, `cookie: theme=dark; AuthSession=${kRedacted}; x=1`],
      [`GET /_events/x?user=a&password=${enc}&n=1`, `GET /_events/x?user=a&password=${kRedacted}&n=1`],
      [`{"name":"bob","password":"${secret}"}`, `{"name":"bob","password":"${kRedacted}"}`],
      ['http://127.0.0.1:5984/no/credentials', 'http://127.0.0.1:5984/no/credentials'],
    ];
    for (const [input, want] of cases) expect(redactText(input), input).to.equal(want);
  });

  it('redacts whole values of fields named like secrets, at any depth, in arrays and errors too', () => {
    const out = redact({
      password: secret, clientSecret: secret, api_key: secret, accessToken: secret,
      headers: { authorization: `Basic ${basic}`, cookie: 'AuthSession=abc', 'content-type': 'text/plain' },
      list: [{ Password: secret }, `http://u:${enc}@h`],
      error: new Error(`could not reach http://admin:${enc}@127.0.0.1`),
      url: new URL(`http://admin:${enc}@127.0.0.1:5984/`),
      empty: { password: '' }, tokenCount: undefined,
    }) as Record<string, any>;
    expect(out).to.deep.include({ password: kRedacted, clientSecret: kRedacted, api_key: kRedacted, accessToken: kRedacted });
    expect(out.headers).to.deep.equal({ authorization: kRedacted, cookie: kRedacted, 'content-type': 'text/plain' });
    expect(out.list).to.deep.equal([{ Password: kRedacted }, `http://u:${kRedacted}@h`]);
    expect(out.error.message).to.equal(`could not reach http://admin:${kRedacted}@127.0.0.1`);
    expect(out.error.stack).to.not.contain(enc);
    expect(out.url).to.equal(`http://admin:${kRedacted}@127.0.0.1:5984/`);
    // Nothing to hide is left as it is.
    expect(out.empty).to.deep.equal({ password: '' });
    expect(JSON.stringify(out)).to.not.contain(secret).and.not.contain(enc).and.not.contain(basic);
  });

  it('in both formats, no secret passed to the logger reaches a line', () => {
    for (const format of ['json', 'pretty'] as const) {
      const { logger, lines } = capture({ level: 'debug', format, color: false });
      logger.debug(`using http://admin:${enc}@127.0.0.1:5984`, { couchUrl: `http://admin:${enc}@127.0.0.1:5984`, headers: { authorization: `Basic ${basic}` }, password: secret });
      logger.error('request failed', { url: `/_events/x?password=${enc}`, error: new Error(`Basic ${basic}`) });
      expect(lines.join('\n'), format).to.not.contain(secret).and.not.contain(enc).and.not.contain(basic);
      expect(lines.join('\n'), format).to.contain(kRedacted);
    }
  });
});

describe('log: what `livelycouch start` writes', function () {
  this.timeout(60_000);
  const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
  const started: Array<{ proc: ChildProcess; dataDir: string }> = [];
  const run = (format: string) => {
    const env: NodeJS.ProcessEnv = { ...process.env, LIVELY_LOG_FORMAT: format };
    delete env.COUCHDB_URL;
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lively-logfmt-'));
    const proc = spawn(process.execPath, ['--no-node-snapshot', '--import', 'tsx', main, 'start', '--port', '0', '--data', dataDir, '--no-sample', '--log-level', 'info'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    started.push({ proc, dataDir });
    return proc;
  };
  after(async () => {
    for (const { proc, dataDir } of started.splice(0)) {
      await ended(proc);
      removeDir(dataDir);
    }
  });

  it('LIVELY_LOG_FORMAT=pretty: readable lines, not JSON', async () => {
    const proc = run('pretty');
    const err: string[] = [];
    try {
      createInterface({ input: proc.stderr! }).on('line', (l) => err.push(l));
      await new Promise<void>((resolve, reject) => {
        proc.once('exit', (code) => reject(new Error(`exited with ${code}: ${err.join('\n')}`)));
        createInterface({ input: proc.stdout! }).on('line', (l) => { if (/listening on/.test(l)) resolve(); });
      });
      const starting = err.find((l) => l.includes('livelycouch starting'));
      expect(starting, err.join('\n')).to.match(/^\d\d:\d\d:\d\d\.\d{3} INFO  livelycouch starting .*port=0/);
      expect(starting).to.not.contain('\x1b['); // stderr is a pipe here: no colours
      for (const l of err) expect(l.startsWith('{'), l).to.equal(false);
    } finally {
      proc.kill('SIGKILL');
    }
  });

  it('a wrong LIVELY_LOG_FORMAT stops it with a one-line reason and a non-zero exit', async () => {
    const proc = run('xml');
    let err = '';
    proc.stderr!.on('data', (d) => { err += d; });
    const code = await new Promise<number | null>((r) => proc.once('exit', r));
    expect(code).to.not.equal(0);
    expect(err.trim()).to.equal('livelycouch start: LIVELY_LOG_FORMAT must be "json" or "pretty", got "xml"');
  });
});
