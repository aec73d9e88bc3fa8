import { expect } from 'chai';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { TurnReplies, firedReplyJson } from '../../src/server/reply.ts';

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

describe('fire-and-forget answers of one turn (TurnReplies)', () => {
  /** A server that holds the responses of `n` requests, then hands them to `use` in one synchronous run. */
  async function heldResponses(n: number, use: (held: Array<{ req: http.IncomingMessage; res: http.ServerResponse }>) => void): Promise<Array<{ status: number; body: string } | { error: string }>> {
    const held: Array<{ req: http.IncomingMessage; res: http.ServerResponse }> = [];
    const server = http.createServer((req, res) => {
      held.push({ req, res });
      if (held.length === n) use(held);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      return await Promise.all(Array.from({ length: n }, (_, i) => request(`http://127.0.0.1:${port}/${i}`, { reset: true })
        .then(async (r) => ({ status: r.statusCode, body: await r.body.text() }), (err: Error) => ({ error: err.message }))));
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  }

  it('writes the first answer of a turn at once and the rest when the turn ends, each its own', async () => {
    const failed: unknown[] = [];
    const turn = new TurnReplies<http.IncomingMessage>((_req, _res, err) => failed.push(err));
    let sentAtOnce: boolean[] = [];
    let sentAtEnd: boolean[] = [];
    const replies = await heldResponses(5, (held) => {
      for (const { req, res } of held) turn.accepted(req, res, `{"n":"${req.url}"}`, 8 + req.url!.length);
      sentAtOnce = held.map((h) => h.res.headersSent);
      setImmediate(() => { sentAtEnd = held.map((h) => h.res.headersSent); });
    });
    expect(sentAtOnce).to.deep.equal([true, false, false, false, false]);
    expect(sentAtEnd).to.deep.equal([true, true, true, true, true]);
    expect(replies.map((r) => 'status' in r && r.status)).to.deep.equal([202, 202, 202, 202, 202]);
    expect(replies.map((r) => 'body' in r && JSON.parse(r.body).n).sort()).to.deep.equal(['/0', '/1', '/2', '/3', '/4']);
    expect(failed).to.deep.equal([]);
  });

  it('a held answer whose client left, or that cannot be written, costs only itself: the rest of the turn is answered', async () => {
    const failed: Array<{ url: string; err: unknown }> = [];
    const turn = new TurnReplies<http.IncomingMessage>((req, res, err) => { failed.push({ url: req.url!, err }); res.destroy(); });
    const replies = await heldResponses(4, (held) => {
      const byUrl = new Map(held.map((h) => [h.req.url, h]));
      for (const url of ['/0', '/1', '/2', '/3']) {
        const { req, res } = byUrl.get(url)!;
        // /1: a header value node refuses to write; /2: its connection is gone before the turn ends
        turn.accepted(req, res, '{}', 2, url === '/1' ? { 'x-bad': 'a\nb' } : undefined);
      }
      byUrl.get('/2')!.req.socket.destroy();
    });
    expect(replies.map((r) => ('status' in r ? r.status : 'gone'))).to.deep.equal([202, 'gone', 'gone', 202]);
    expect(failed.map((f) => f.url)).to.deep.equal(['/1']);
    expect((failed[0]!.err as NodeJS.ErrnoException).code).to.equal('ERR_INVALID_CHAR');
  });
});
