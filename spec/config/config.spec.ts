import { expect } from 'chai';
import fs from 'node:fs';
import { configFromEnv, describeConfig, kOptionList, makeConfig } from '../../src/config/index.ts';
import { withTable } from '../../src/config/doc-table.ts';
import { UsageError, parseArgs } from '../../src/cli/args.ts';
import { findCommand } from '../../src/cli/commands.ts';
import { LivelyError } from '../../src/shared/errors.ts';

describe('configuration', () => {
  it('defaults are complete and frozen', () => {
    const c = makeConfig();
    expect(Object.isFrozen(c)).to.equal(true);
    expect(c).to.include({ host: '127.0.0.1', port: 5985, dbPrefix: 'lively_', bodyLimit: 1024 * 1024 });
    expect(c.interpreters.python).to.deep.equal(['python3', '-u']);
  });

  it('each invalid option is refused with an LC_CONFIG error naming it', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ port: 70000 }, 'options.port'],
      [{ couchUrl: 'ftp://x' }, 'options.couchUrl'],
      [{ dbPrefix: 'Bad' }, 'options.dbPrefix'],
      [{ threads: 0 }, 'options.threads'],
      [{ bodyLimit: -1 }, 'options.bodyLimit'],
      [{ logLevel: 'loud' }, 'options.logLevel'],
      [{ interpreters: { lua: [] } }, 'options.interpreters.lua'],
      [{ leaseMs: 5 }, 'options.leaseMs'],
      [{ changesConcurrency: 0 }, 'options.changesConcurrency'],
    ];
    for (const [input, name] of cases) {
      expect(() => makeConfig(input as never), name).to.throw(LivelyError, name);
    }
  });

  it('environment variables map to options; a non-integer is refused by name', () => {
    const c = configFromEnv({ COUCHDB_URL: 'http://a:b@127.0.0.1:5984', LIVELY_PORT: '7000', LIVELY_THREADS: '3', LIVELY_SAMPLE: '0', LIVELY_INTERPRETERS: '{"lua":["lua5.4"]}' });
    expect(c).to.deep.include({ couchUrl: 'http://a:b@127.0.0.1:5984', port: 7000, threads: 3, sample: false });
    expect(makeConfig(c).interpreters.lua).to.deep.equal(['lua5.4']);
    expect(() => configFromEnv({ LIVELY_PORT: 'eighty' })).to.throw(LivelyError, 'LIVELY_PORT');
    expect(() => configFromEnv({ LIVELY_INTERPRETERS: '{' })).to.throw(LivelyError, 'LIVELY_INTERPRETERS');
    expect(configFromEnv({ LIVELY_LEASE_MS: '1000', LIVELY_CHANGES_CONCURRENCY: '20' })).to.deep.include({ leaseMs: 1000, changesConcurrency: 20 });
    expect(() => configFromEnv({ LIVELY_LEASE_MS: 'soon' })).to.throw(LivelyError, 'LIVELY_LEASE_MS');
  });

  it('a worker\'s default concurrency (64) and queue (1,000) come from LIVELY_WORKER_CONCURRENCY and LIVELY_MAX_WORKER_QUEUE', () => {
    expect(makeConfig()).to.deep.include({ workerConcurrency: 64, maxWorkerQueue: 1_000 });
    expect(makeConfig(configFromEnv({ LIVELY_WORKER_CONCURRENCY: '8', LIVELY_MAX_WORKER_QUEUE: '0' }))).to.deep.include({ workerConcurrency: 8, maxWorkerQueue: 0 });
    expect(() => makeConfig(configFromEnv({ LIVELY_WORKER_CONCURRENCY: '0' }))).to.throw(LivelyError, 'options.workerConcurrency');
    expect(() => makeConfig(configFromEnv({ LIVELY_MAX_WORKER_QUEUE: '-1' }))).to.throw(LivelyError, 'options.maxWorkerQueue');
    expect(() => configFromEnv({ LIVELY_MAX_WORKER_QUEUE: 'many' })).to.throw(LivelyError, 'LIVELY_MAX_WORKER_QUEUE');
  });

  it('responseLimit: 6 MiB by default, LIVELY_RESPONSE_LIMIT or --response-limit sets it, zero is refused by name', () => {
    expect(makeConfig().responseLimit).to.equal(6 * 1024 * 1024);
    expect(makeConfig(configFromEnv({ LIVELY_RESPONSE_LIMIT: '1000' })).responseLimit).to.equal(1000);
    expect(parseArgs(['start', '--response-limit', '2048'], 'start', findCommand('start')!.flags).config).to.deep.include({ responseLimit: 2048 });
    expect(() => makeConfig({ responseLimit: 0 })).to.throw(LivelyError, 'options.responseLimit');
    expect(() => configFromEnv({ LIVELY_RESPONSE_LIMIT: 'big' })).to.throw(LivelyError, 'LIVELY_RESPONSE_LIMIT');
  });

  it('logMaxRecords: 1,000,000 by default, LIVELY_LOG_MAX_RECORDS sets it, zero or a non-integer is refused by name', () => {
    expect(makeConfig().logMaxRecords).to.equal(1_000_000);
    expect(makeConfig(configFromEnv({ LIVELY_LOG_MAX_RECORDS: '5000' })).logMaxRecords).to.equal(5000);
    expect(() => makeConfig({ logMaxRecords: 0 })).to.throw(LivelyError, 'options.logMaxRecords');
    expect(() => configFromEnv({ LIVELY_LOG_MAX_RECORDS: 'lots' })).to.throw(LivelyError, 'LIVELY_LOG_MAX_RECORDS');
  });

  it('maxChainDepth: 16 by default, LIVELY_MAX_CHAIN_DEPTH sets it, zero is refused by name', () => {
    expect(makeConfig().maxChainDepth).to.equal(16);
    expect(makeConfig(configFromEnv({ LIVELY_MAX_CHAIN_DEPTH: '4' })).maxChainDepth).to.equal(4);
    expect(() => makeConfig({ maxChainDepth: 0 })).to.throw(LivelyError, 'options.maxChainDepth');
  });

  it('logRecords: on by default, LIVELY_LOG_RECORDS=0 or false turns activation records off, a non-boolean is refused by name', () => {
    expect(makeConfig().logRecords).to.equal(true);
    expect(makeConfig(configFromEnv({ LIVELY_LOG_RECORDS: '0' })).logRecords).to.equal(false);
    expect(makeConfig(configFromEnv({ LIVELY_LOG_RECORDS: 'false' })).logRecords).to.equal(false);
    expect(makeConfig(configFromEnv({ LIVELY_LOG_RECORDS: '1' })).logRecords).to.equal(true);
    expect(() => makeConfig({ logRecords: 'no' as unknown as boolean })).to.throw(LivelyError, 'options.logRecords');
  });

  it('a boolean variable reads 1/true/on/yes and 0/false/off/no in any case; any other word is refused by name, not read as on', () => {
    for (const [text, value] of [['1', true], ['TRUE', true], ['on', true], ['Yes', true], ['0', false], ['False', false], ['off', false], [' no ', false]] as const) {
      expect(makeConfig(configFromEnv({ LIVELY_STORE_SYNC: text })).storeSync, text).to.equal(value);
    }
    expect(makeConfig().storeSync).to.equal(true);
    for (const text of ['of', 'enabled', '2']) {
      expect(() => configFromEnv({ LIVELY_STORE_SYNC: text }), text).to.throw(LivelyError, `LIVELY_STORE_SYNC must be 1, true, on or yes, or 0, false, off or no, got "${text}"`);
    }
  });

  it('flags override, and the logged form hides the password', () => {
    const args = parseArgs(['start', '--port', '0', '--data=/tmp/x', '--no-sample', '--couch', 'http://admin:secret@127.0.0.1:5984'], 'start', findCommand('start')!.flags);
    expect(args.command).to.equal('start');
    expect(args.config).to.deep.include({ port: 0, dataDir: '/tmp/x', sample: false });
    const c = makeConfig({ ...configFromEnv({ LIVELY_PORT: '7000' }), ...args.config });
    expect(c.port).to.equal(0);
    expect(JSON.stringify(describeConfig(c))).to.not.contain('secret');
    expect(() => parseArgs(['start', '--port'], 'start', findCommand('start')!.flags)).to.throw(LivelyError, '--port needs a value');
  });

  it('every option with a variable is read from it, and every option with a flag is a flag of start and dev (the table is the one source)', () => {
    const start = findCommand('start')!.flags.map((f) => f.name);
    const dev = findCommand('dev')!.flags.map((f) => f.name);
    for (const [key, o] of kOptionList) {
      if (o.flag) {
        expect(start, `start --${o.flag}`).to.include(o.flag);
        expect(dev, `dev --${o.flag}`).to.include(o.flag);
      }
      if (!o.env) continue;
      const sample = o.kind === 'int' ? String(o.min + 1) : o.kind === 'bool' ? 'false' : o.kind === 'enum' ? o.values[0]! : o.kind === 'interpreters' ? '{"lua":["lua"]}' : o.kind === 'optional-string' && key === 'couchUrl' ? 'http://h:1' : 'abc';
      expect(configFromEnv({ [o.env]: sample }), o.env).to.have.property(key);
    }
    // logRetentionDays had no variable before the table.
    expect(makeConfig(configFromEnv({ LIVELY_LOG_RETENTION_DAYS: '3' })).logRetentionDays).to.equal(3);
    expect(parseArgs(['start', '--no-records'], 'start', findCommand('start')!.flags).config).to.deep.equal({ logRecords: false });
  });

  it('--data means the data directory in every command; trigger\'s request body is --body (-d)', () => {
    for (const cmd of ['start', 'dev', 'init', 'deploy', 'trigger', 'status', 'logs']) {
      const args = parseArgs([cmd, ...(findCommand(cmd)!.positional[0] ? ['x'] : []), '--data', '/tmp/lc-data'], cmd, findCommand(cmd)!.flags);
      expect(args.config.dataDir, cmd).to.equal('/tmp/lc-data');
    }
    expect(parseArgs(['trigger', 'p', '-d', '{"n":1}'], 'trigger', findCommand('trigger')!.flags).flags.body).to.equal('{"n":1}');
  });

  it('a flag\'s value out of range is a usage error naming the flag', () => {
    expect(() => parseArgs(['start', '--port', '70000'], 'start', findCommand('start')!.flags)).to.throw(UsageError, '--port must be an integer from 0 to 65535');
    expect(() => parseArgs(['start', '--threads', '0'], 'start', findCommand('start')!.flags)).to.throw(UsageError, '--threads must be a positive integer');
    expect(() => parseArgs(['start', '--log-level', 'loud'], 'start', findCommand('start')!.flags)).to.throw(UsageError, '--log-level must be debug');
  });

  it('docs/operations.md holds the configuration table made from the options table (npm run docs:config writes it)', () => {
    const page = fs.readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8');
    expect(withTable(page), 'run npm run docs:config').to.equal(page);
    for (const [key] of kOptionList) expect(page).to.contain(`| \`${key}\` |`);
  });
});
