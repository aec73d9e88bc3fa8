import { expect } from 'chai';
import { DayDbs, kDayMs } from '../../src/store/days.ts';

describe('DayDbs names', () => {
  it('names each UTC day, the same name all day and a new one from its first millisecond', () => {
    const days = new DayDbs('lively_logs-');
    const midnight = Date.UTC(2026, 10, 28);
    expect(days.name(midnight - 1)).to.equal('lively_logs-20261127');
    expect(days.name(midnight)).to.equal('lively_logs-20261128');
    expect(days.name(midnight + kDayMs - 1)).to.equal('lively_logs-20261128');
    expect(days.name(midnight + kDayMs)).to.equal('lively_logs-20261129');
    // Back to an earlier day (a clock set back) is named afresh, not from the last day asked.
    expect(days.name(midnight - kDayMs - 1)).to.equal('lively_logs-20261126');
    expect(days.name(midnight + 5)).to.equal('lively_logs-20261128');
    expect(days.parse(days.name(midnight))).to.deep.equal({ name: 'lively_logs-20261128', start: midnight });
  });

  it('refuses a base that cannot name a CouchDB database', () => {
    expect(() => new DayDbs('Bad Prefix-')).to.throw(/invalid CouchDB database name/);
  });
});
