import { expect } from 'chai';
import { ErrorCatalogue, LivelyError, isLivelyError, type ErrorCode } from '../../src/shared/errors.ts';

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
