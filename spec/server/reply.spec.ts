import { expect } from 'chai';
import { firedReplyJson } from '../../src/server/reply.ts';

describe('the reply to a fired trigger', () => {
  const cases: Array<[string, string[], string[], unknown]> = [
    ['a1b2c3d4-m3x9k2-1z', ['bench_noop'], ['trivial_noop'], undefined],
    ['a', [], [], undefined],
    ['quote"and\\backslash', ['é', 'tab\there', 'line\nbreak', 'lone \ud800 surrogate', 'emoji 😀', '\u007f', ' ~'], ['w', '<&>'], undefined],
    ['a', ['e', 'f'], ['w', 'w2'], []],
    ['a', ['e'], ['w'], [{ worker: 'w', status: 'ok', result: { ok: true, text: 'grüße' }, logs: [], durationMs: 0 }]],
  ];
  for (const [activation, events, workers, outcomes] of cases) {
    it(`is the text and UTF-8 length JSON.stringify gives (${JSON.stringify(events).slice(0, 40)}…)`, () => {
      const object: Record<string, unknown> = { ok: true, activation, events, workers };
      if (outcomes !== undefined) object.outcomes = outcomes;
      const want = JSON.stringify(object);
      expect(firedReplyJson(activation, events, workers, outcomes)).to.deep.equal({ text: want, bytes: Buffer.byteLength(want) });
    });
  }
});
