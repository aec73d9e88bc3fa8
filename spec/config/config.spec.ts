import { expect } from 'chai';
import { configFromEnv, describeConfig, makeConfig } from '../../src/config/index.ts';
import { parseArgs } from '../../src/cli/args.ts';
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

  it('flags override, and the logged form hides the password', () => {
    const args = parseArgs(['start', '--port', '0', '--data=/tmp/x', '--no-sample', '--couch', 'http://admin:secret@127.0.0.1:5984'], 'start', findCommand('start')!.flags);
    expect(args.command).to.equal('start');
    expect(args.config).to.deep.include({ port: 0, dataDir: '/tmp/x', sample: false });
    const c = makeConfig({ ...configFromEnv({ LIVELY_PORT: '7000' }), ...args.config });
    expect(c.port).to.equal(0);
    expect(JSON.stringify(describeConfig(c))).to.not.contain('secret');
    expect(() => parseArgs(['start', '--port'], 'start', findCommand('start')!.flags)).to.throw(LivelyError, '--port needs a value');
  });
});
