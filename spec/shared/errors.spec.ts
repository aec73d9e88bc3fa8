import { expect } from 'chai';
import { ErrorCatalogue, LivelyError, describeError, isLivelyError, type ErrorCode } from '../../src/shared/errors.ts';

describe('the error catalogue', () => {
  for (const code of Object.keys(ErrorCatalogue) as ErrorCode[]) {
    it(`${code} builds an error with its code, an HTTP error status and a JSON body`, () => {
      const err = new LivelyError(code);
      expect(code).to.match(/^LC_[A-Z_]+$/);
      expect(err.code).to.equal(code);
      expect(err.status).to.equal(ErrorCatalogue[code].status);
      expect(err.status).to.be.within(400, 599);
      expect(err.message).to.equal(ErrorCatalogue[code].message);
      expect(err.toJSON()).to.deep.equal({ error: code, reason: ErrorCatalogue[code].message });
      expect(isLivelyError(err, code)).to.equal(true);
    });
  }

  it('details travel in the JSON body, and a custom message replaces the default', () => {
    const err = new LivelyError('LC_METHOD_NOT_ALLOWED', 'GET only', { allow: ['GET'] });
    expect(err.toJSON()).to.deep.equal({ error: 'LC_METHOD_NOT_ALLOWED', reason: 'GET only', allow: ['GET'] });
    expect(isLivelyError(err, 'LC_NO_EVENT')).to.equal(false);
    expect(isLivelyError(new Error('x'))).to.equal(false);
  });
});

describe('describeError', () => {
  it('gives a text for any thrown value, even one JSON has no form for', () => {
    expect(describeError(new TypeError('bad'))).to.equal('bad');
    expect(describeError('plain')).to.equal('plain');
    expect(describeError({ code: 7 })).to.equal('{"code":7}');
    expect(describeError(Symbol('s'))).to.equal('Symbol(s)');
    expect(describeError(undefined)).to.equal('undefined');
    expect(describeError(() => 1)).to.match(/^\(\) ?=> ?1$/);
    expect(describeError(10n)).to.equal('10');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(describeError(cyclic)).to.equal('[object Object]');
    expect(describeError(Object.create(null))).to.equal('{}');
    const noMessage = Object.defineProperty(new Error('x'), 'message', { get() { throw new Error('getter'); } });
    expect(describeError(noMessage)).to.equal('[object Error]');
  });
});
