import { expect } from 'chai';
import { LineSplitter, headOf } from '../../src/shared/output.ts';
import { cutLogLine, kMaxLogLineChars } from '../../workers-runtime/protocol.ts';

/** Whether `s` holds half a surrogate pair, which JSON would carry as a lone escape. */
const loneSurrogate = (s: string) => /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);

describe('cutting worker output', () => {
  const emoji = '\u{1F600}'; // two UTF-16 units

  it('headOf keeps whole characters: a cut that would end inside a surrogate pair ends before it', () => {
    expect(headOf('abc', 5)).to.equal('abc');
    expect(headOf(`a${emoji}`, 2)).to.equal('a');
    expect(headOf(`ab${emoji}`, 2)).to.equal('ab');
    expect(headOf(`${emoji}${emoji}`, 3)).to.equal(emoji);
  });

  it('a log line over 64 KiB is cut and marked, never inside a character', () => {
    const line = `a${emoji.repeat(kMaxLogLineChars)}`;
    const cut = cutLogLine(line);
    expect(cut).to.match(/ … \[line cut at 65536 chars\]$/);
    expect(loneSurrogate(cut)).to.equal(false);
    expect(cut.length).to.be.at.most(kMaxLogLineChars + 40);
    expect(cutLogLine('short')).to.equal('short');
  });

  it('the line splitter cuts a long line without splitting a character, and says it cut', () => {
    const lines: Array<[string, boolean]> = [];
    const s = new LineSplitter((line, cut) => lines.push([line, cut]), 10);
    s.push(`a${emoji.repeat(20)}\nshort\n`);
    expect(lines).to.have.length(2);
    expect(lines[0]![1]).to.equal(true);
    expect(loneSurrogate(lines[0]![0])).to.equal(false);
    expect(lines[0]![0]).to.equal(`a${emoji.repeat(4)}`);
    expect(lines[1]).to.deep.equal(['short', false]);
  });
});
