import { expect } from 'chai';
import { prepareResponse } from '../../src/core/response.ts';
import { LivelyError } from '../../src/shared/errors.ts';

const refused = (result: unknown, code: string, reason: string | RegExp, limit = 1024) => {
  try {
    prepareResponse(result, limit);
  } catch (e) {
    expect(e).to.be.instanceOf(LivelyError);
    expect((e as LivelyError).code).to.equal(code);
    if (typeof reason === 'string') expect((e as LivelyError).message).to.contain(reason);
    else expect((e as LivelyError).message).to.match(reason);
    return;
  }
  expect.fail(`${JSON.stringify(result)} was taken`);
};

describe('prepareResponse (a worker result as an HTTP response)', () => {
  it('a string body as it is, text/plain UTF-8 by default, its length in bytes', () => {
    expect(prepareResponse({ body: 'héllo' }, 1024)).to.deep.equal({ status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'héllo', length: 6 });
    expect(prepareResponse({ status: 201, headers: { 'Content-Type': 'text/html' }, body: '<p>' }, 1024).headers).to.deep.equal({ 'content-type': 'text/html' });
  });

  it('an object, array or number body as JSON; null or no body is empty', () => {
    expect(prepareResponse({ status: 400, body: { error: 'x' } }, 1024)).to.deep.include({ status: 400, body: '{"error":"x"}', headers: { 'content-type': 'application/json' } });
    expect(prepareResponse({ body: [1] }, 1024).body).to.equal('[1]');
    expect(prepareResponse({ body: 5 }, 1024).body).to.equal('5');
    expect(prepareResponse({ status: 204 }, 1024)).to.deep.equal({ status: 204, headers: {}, body: '', length: 0 });
    expect(prepareResponse({ status: 204, body: null }, 1024).length).to.equal(0);
  });

  it('bodyBase64 as its bytes, application/octet-stream by default', () => {
    const r = prepareResponse({ bodyBase64: Buffer.from([0, 255]).toString('base64') }, 1024);
    expect(Buffer.isBuffer(r.body)).to.equal(true);
    expect([...(r.body as Buffer)]).to.deep.equal([0, 255]);
    expect(r).to.deep.include({ length: 2, headers: { 'content-type': 'application/octet-stream' } });
  });

  it('a result of another shape is the whole result as a JSON 200', () => {
    expect(prepareResponse({ hello: 'world' }, 1024)).to.deep.include({ status: 200, body: '{"hello":"world"}' });
    expect(prepareResponse({ status: 'ok' }, 1024).body, 'a status that is not a number is data').to.equal('{"status":"ok"}');
    expect(prepareResponse({ status: 200, extra: 1 }, 1024).body).to.equal('{"status":200,"extra":1}');
    expect(prepareResponse('text', 1024)).to.deep.include({ status: 200, body: '"text"' });
    expect(prepareResponse(undefined, 1024)).to.deep.include({ status: 200, body: '', length: 0 });
  });

  it('several values of a header stay several (set-cookie); numbers become text', () => {
    const r = prepareResponse({ status: 302, headers: { Location: '/x', 'Set-Cookie': ['a=1', 'b=2'], 'x-n': 5 } }, 1024);
    expect(r.headers).to.deep.equal({ location: '/x', 'set-cookie': ['a=1', 'b=2'], 'x-n': '5' });
  });

  it('refuses hop-by-hop headers, content-length, bad names and values, with a reason', () => {
    for (const h of ['Connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'proxy-authenticate']) {
      refused({ headers: { [h]: 'x' }, body: '' }, 'LC_BAD_RESPONSE', `"${h.toLowerCase()}" is a hop-by-hop header`);
    }
    refused({ headers: { 'content-length': '5' }, body: 'x' }, 'LC_BAD_RESPONSE', 'measured by the runtime');
    refused({ headers: { 'bad name': 'x' }, body: '' }, 'LC_BAD_RESPONSE', 'is not a header name');
    refused({ headers: { 'x-a': 'a\r\nx-b: injected' }, body: '' }, 'LC_BAD_RESPONSE', 'must not contain CR, LF or NUL');
    refused({ headers: { 'x-a': { no: 1 } }, body: '' }, 'LC_BAD_RESPONSE', 'must be a string, a number or a list');
    refused({ headers: ['x'], body: '' }, 'LC_BAD_RESPONSE', 'headers: must be an object');
  });

  it('refuses a bad status, both bodies, bad base64, and a body for 204', () => {
    refused({ status: 99, body: '' }, 'LC_BAD_RESPONSE', 'status: must be a whole number from 200 to 599');
    refused({ status: 600 }, 'LC_BAD_RESPONSE', 'status:');
    refused({ status: 200.5 }, 'LC_BAD_RESPONSE', 'status:');
    refused({ body: 'a', bodyBase64: 'YQ==' }, 'LC_BAD_RESPONSE', 'not both');
    refused({ bodyBase64: 'not base64!' }, 'LC_BAD_RESPONSE', 'bodyBase64: must be a base64 string');
    refused({ status: 204, body: 'x' }, 'LC_BAD_RESPONSE', 'a 204 response has no body');
  });

  it('a body over the limit, in bytes, is LC_RESPONSE_TOO_LARGE naming the limit; one at it is taken', () => {
    expect(prepareResponse({ body: 'x'.repeat(10) }, 10).length).to.equal(10);
    refused({ body: 'x'.repeat(11) }, 'LC_RESPONSE_TOO_LARGE', 'over LIVELY_RESPONSE_LIMIT (10 bytes)', 10);
    refused({ body: 'é'.repeat(6) }, 'LC_RESPONSE_TOO_LARGE', 'LIVELY_RESPONSE_LIMIT', 10);
    refused({ body: { a: 'x'.repeat(10) } }, 'LC_RESPONSE_TOO_LARGE', 'LIVELY_RESPONSE_LIMIT', 10);
    refused({ bodyBase64: Buffer.alloc(11).toString('base64') }, 'LC_RESPONSE_TOO_LARGE', 'LIVELY_RESPONSE_LIMIT', 10);
    refused({ whole: 'x'.repeat(20) }, 'LC_RESPONSE_TOO_LARGE', 'LIVELY_RESPONSE_LIMIT', 10);
    expect(prepareResponse({ bodyBase64: Buffer.alloc(10).toString('base64') }, 10).length).to.equal(10);
  });
});
