import { expect } from 'chai';
import { corsHeaders, preflightHeaders } from '../../src/server/cors.ts';
import type { CorsPolicy } from '../../src/events/model.ts';

const listed: CorsPolicy = { origins: ['https://a.example'], credentials: true, expose: ['etag'], headers: ['content-type'], maxAge: 60 };
const anyone: CorsPolicy = { origins: '*', credentials: false, expose: [] };

describe('CORS headers of an event', () => {
  it('a listed origin is echoed with Vary, credentials and exposed headers', () => {
    expect(corsHeaders(listed, 'https://a.example')).to.deep.equal({
      'access-control-allow-origin': 'https://a.example', vary: 'Origin', 'access-control-allow-credentials': 'true', 'access-control-expose-headers': 'etag',
    });
  });

  it('an unlisted origin, or none, gets no Access-Control-* header', () => {
    expect(corsHeaders(listed, 'https://b.example')).to.deep.equal({ vary: 'Origin' });
    expect(corsHeaders(listed, undefined)).to.deep.equal({ vary: 'Origin' });
    expect(corsHeaders(anyone, undefined)).to.equal(undefined);
    expect(preflightHeaders(listed, 'https://a.example.evil', ['GET'], 'x')).to.deep.equal({ vary: 'Origin' });
  });

  it('"*" answers any origin with "*"', () => {
    expect(corsHeaders(anyone, 'https://x.example')).to.deep.equal({ 'access-control-allow-origin': '*' });
  });

  it('a preflight adds methods, the listed headers (or those asked for) and max-age', () => {
    expect(preflightHeaders(listed, 'https://a.example', ['GET', 'POST'], 'x-other')).to.include({
      'access-control-allow-methods': 'GET, POST', 'access-control-allow-headers': 'content-type', 'access-control-max-age': '60',
    });
    const h = preflightHeaders(anyone, 'https://x.example', ['PUT'], ' x-custom ');
    expect(h).to.deep.equal({ 'access-control-allow-origin': '*', 'access-control-allow-methods': 'PUT', 'access-control-allow-headers': 'x-custom' });
  });
});
