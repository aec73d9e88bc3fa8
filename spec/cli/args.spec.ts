/** The command line's pieces that need no process: options, credentials, log filters and lines. */
import { expect } from 'chai';
import { UsageError, parseArgs } from '../../src/cli/args.ts';
import { findCommand, kCommands, commandHelp } from '../../src/cli/commands.ts';
import { explicitTarget, parseUser, redactSecrets, storeUrlThrough } from '../../src/cli/client.ts';
import { logsQuery, matches, parseSince } from '../../src/cli/logs.ts';
import { activationLine, deployLines } from '../../src/cli/format.ts';

const flags = (name: string) => findCommand(name)!.flags;

describe('livelycouch options', () => {
  it('an option the command does not know is an error naming it', () => {
    expect(() => parseArgs(['deploy', 'app', '--bogus'], 'deploy', flags('deploy'))).to.throw(UsageError, 'unknown option --bogus');
    expect(() => parseArgs(['status', '-q'], 'status', flags('status'))).to.throw(UsageError, 'unknown option -q');
    // --follow belongs to logs only
    expect(() => parseArgs(['status', '--follow'], 'status', flags('status'))).to.throw(UsageError, 'unknown option --follow');
  });

  it('values: --x v, --x=v, a missing value and a value given to a switch are told apart', () => {
    const a = parseArgs(['logs', '-f', '--event=digest', '-n', '5', '--data-dir', '/tmp/d'], 'logs', flags('logs'));
    expect(a.flags).to.deep.equal({ follow: true, event: 'digest', limit: '5' });
    expect(a.config.dataDir).to.equal('/tmp/d');
    expect(() => parseArgs(['logs', '--event'], 'logs', flags('logs'))).to.throw(UsageError, '--event needs a value');
    expect(() => parseArgs(['logs', '--follow=yes'], 'logs', flags('logs'))).to.throw(UsageError, '--follow takes no value');
    expect(() => parseArgs(['start', '--port', 'http'], 'start', flags('start'))).to.throw(UsageError, '--port must be an integer');
  });

  it('trigger --body is the request body; --data and --data-dir are the data directory there as everywhere', () => {
    const a = parseArgs(['trigger', 'x', '--body', '{"a":1}', '--data-dir', '/tmp/d'], 'trigger', flags('trigger'));
    expect(a.flags.body).to.equal('{"a":1}');
    expect(a.config.dataDir).to.equal('/tmp/d');
    expect(a.positional).to.deep.equal(['x']);
  });

  it('every command has help naming its options', () => {
    for (const c of kCommands) {
      const text = commandHelp(c);
      expect(text.startsWith(`usage: livelycouch ${c.name}`)).to.equal(true);
      for (const f of c.flags) expect(text).to.contain(`--${f.name}`);
    }
  });
});

describe('livelycouch credentials', () => {
  it('--url with --user: origin without userinfo, credentials apart; LIVELY_USER=name with LIVELY_PASSWORD', () => {
    const t = explicitTarget({ url: 'http://127.0.0.1:5985/', user: 'admin:s3cr:et' }, {})!;
    expect(t).to.deep.equal({ url: 'http://127.0.0.1:5985', credentials: { user: 'admin', password: 's3cr:et' } });
    expect(explicitTarget({}, { LIVELY_URL: 'http://h:1', LIVELY_USER: 'bob', LIVELY_PASSWORD: 'pw12' })!.credentials).to.deep.equal({ user: 'bob', password: 'pw12' });
    expect(explicitTarget({ url: 'http://ann:pw99@h:1' }, {})).to.deep.equal({ url: 'http://h:1', credentials: { user: 'ann', password: 'pw99' } });
    expect(explicitTarget({}, {})).to.equal(undefined);
    expect(() => explicitTarget({ url: 'ftp://h' }, {})).to.throw(UsageError, 'http(s)');
    expect(storeUrlThrough(t)).to.equal('http://admin:s3cr%3Aet@127.0.0.1:5985');
  });

  it('messages never show a password the CLI has read, nor URL userinfo', () => {
    parseUser('carol:hunter2-very-secret');
    expect(redactSecrets('failed for hunter2-very-secret at http://x:y@h:1/db')).to.equal('failed for *** at http://x:***@h:1/db');
  });
});

describe('livelycouch logs', () => {
  const rec = { activation: 'a1', events: ['digest'], trigger: 'schedule', path: '/_schedule', method: 'POST', started: Date.UTC(2026, 0, 2, 3, 4, 5), durationMs: 12.4, workers: [{ worker: 'digest', status: 'ok' }] };

  it('filters are applied to what the runtime returns too', () => {
    expect(matches(rec, { limit: 1, event: 'digest' })).to.equal(true);
    expect(matches(rec, { limit: 1, event: 'other' })).to.equal(false);
    expect(matches(rec, { limit: 1, worker: 'digest', status: 'ok' })).to.equal(true);
    expect(matches(rec, { limit: 1, status: 'error' })).to.equal(false);
    expect(matches(rec, { limit: 1, since: rec.started + 1 })).to.equal(false);
  });

  it('--since takes ISO times, ms and durations ago; bad values are refused by name', () => {
    expect(parseSince('2026-01-02T03:04:05Z')).to.equal(rec.started);
    expect(parseSince('1767323045000')).to.equal(1767323045000);
    expect(parseSince('10m', 1_000_000)).to.equal(400_000);
    expect(() => parseSince('yesterday')).to.throw(UsageError, '--since');
    expect(() => logsQuery({ status: 'meh' })).to.throw(UsageError, '--status');
    expect(() => logsQuery({ limit: '0' })).to.throw(UsageError, '--limit');
    expect(logsQuery({}).limit).to.equal(20);
  });

  it('one readable line per activation, failures with their reason', () => {
    expect(activationLine(rec)).to.equal('2026-01-02T03:04:05.000Z  a1  schedule POST /_schedule  digest  digest:ok  12ms');
    const failed = { ...rec, workers: [{ worker: 'digest', status: 'error', error: { code: 'LC_WORKER_ERROR', message: 'boom\n  at x' } }] };
    expect(activationLine(failed)).to.match(/digest:error {2}12ms {2}— digest: LC_WORKER_ERROR boom at x$/);
  });

  it('deploy report lines and their summary', () => {
    const steps = [{ kind: 'worker', id: 'w', action: 'updated' }, { kind: 'event', id: 'e', action: 'unchanged' }] as const;
    expect(deployLines({ written: ['w'], unchanged: ['e'], steps: [...steps], warnings: [] })).to.deep.equal(['updated worker w', 'unchanged event e', '1 updated, 1 unchanged']);
    expect(deployLines({ written: [], unchanged: ['e'], steps: [steps[1]], warnings: [] })).to.deep.equal(['unchanged event e', 'no changes (1 unchanged)']);
    expect(deployLines({ written: [], unchanged: ['e'], steps: [steps[1]], warnings: ['events/e.json: event "e" names worker "x", …'] }))
      .to.deep.equal(['unchanged event e', 'no changes (1 unchanged)', 'warning: events/e.json: event "e" names worker "x", …']);
  });
});
