import { expect } from 'chai';
import { request } from 'undici';
import { eventually, startRuntime } from '../support/runtime.ts';

const att = (code: string) => ({ content_type: 'application/javascript', data: Buffer.from(code).toString('base64') });

describe('event chains', function () {
  this.timeout(20_000);

  it('a worker whose emitted event fires itself again is stopped at the chain limit, and the runtime serves on', async () => {
    const rt = await startRuntime({ config: { maxChainDepth: 3 } });
    try {
      await rt.db.workers.insert({ _id: 'looper', type: 'node', delegate: 'index.js', _attachments: { 'index.js': att(
        `module.exports = async (msg, ctx) => { ctx.emit('again', { n: (Number(msg.parameters.n) || 0) + 1 }); return { n: msg.parameters.n ?? 0 }; };`) } });
      await rt.db.events.bulk({ docs: [
        { _id: 'start_loop', trigger: { '/loop': {} }, workers: { looper: {} } },
        { _id: 'loop_again', trigger: { '/looper/again': {} }, workers: { looper: {} } },
      ] });
      await eventually(() => rt.catalog.matcher.size >= 2, 5_000, 'events loaded');
      const before = rt.firing.fired;
      const res = await request(`${rt.url}/_events/loop?wait=true`);
      expect(res.statusCode).to.equal(200);
      await res.body.dump();
      // depth 0 (the HTTP trigger), then emitted events at depths 1..3; the emit at depth 4 is refused.
      await eventually(() => rt.firing.completed >= before + 4 && rt.firing.inFlight === 0, 5_000, 'the chain to end');
      await new Promise((r) => setTimeout(r, 300)); // nothing more may arrive
      expect(rt.firing.fired - before).to.equal(4);
      const recent = (await rt.activationLog.query({ limit: 10 })).activations;
      const stopped = recent.filter((r) => r.workers[0]?.error?.code === 'LC_CHAIN_TOO_DEEP');
      expect(stopped).to.have.length(1);
      expect(stopped[0]!.path).to.equal('/looper/again');
      expect(stopped[0]!.workers[0]!.error!.message).to.contain('limit of 3');
      // Each emitted event's activation names the activation whose worker emitted it: from the
      // stopped one back through the three emitted ones to the HTTP trigger, which has none.
      const byId = new Map(recent.map((r) => [r.activation, r]));
      const chain = [stopped[0]!];
      while (chain[chain.length - 1]!.parent !== undefined) chain.push(byId.get(chain[chain.length - 1]!.parent!)!);
      expect(chain.map((r) => r.path)).to.deep.equal(['/looper/again', '/looper/again', '/looper/again', '/looper/again', '/loop']);
      expect(chain[4]!.trigger).to.equal('http');
      expect(chain.slice(1, 4).every((r) => r.trigger === 'event')).to.equal(true);
      const again = await request(`${rt.url}/_events/loop?wait=true`);
      expect(again.statusCode).to.equal(200);
      await again.body.dump();
    } finally {
      await rt.stop();
    }
  });
});
