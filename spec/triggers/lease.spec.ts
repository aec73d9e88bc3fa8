import { expect } from 'chai';
import { connect } from '../../src/store/couch.ts';
import { Lease } from '../../src/triggers/lease.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { couchUrl, dropPrefix, uniquePrefix } from '../support/couch.ts';
import { eventually } from '../support/runtime.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';

describe('Lease (a document in the logs database, claimed and renewed with its revision)', () => {
  const prefix = uniquePrefix();
  const server = connect(couchUrl());
  const leases: Lease[] = [];
  const proxies: TcpProxy[] = [];
  before(() => server.db.create(`${prefix}logs`));
  afterEach(async () => {
    await Promise.all(leases.splice(0).map((l) => l.release()));
    await Promise.all(proxies.splice(0).map((p) => p.close()));
  });
  after(() => dropPrefix(prefix));

  function lease(id: string, holder: string, url = couchUrl(), leaseMs = 300): Lease {
    const l = new Lease({ db: connect(url).use(`${prefix}logs`), id, holder, leaseMs, logger: silentLogger });
    l.on('error', () => undefined);
    leases.push(l);
    return l;
  }

  it('of three runtimes one holds the lease and keeps it by renewing; the others stand by', async () => {
    const all = ['a', 'b', 'c'].map((h) => lease('lease-one', h));
    for (const l of all) l.start();
    await eventually(() => all.some((l) => l.held), 5_000, 'a holder');
    const holder = all.find((l) => l.held)!;
    // three lease periods later: still the same single holder
    await new Promise((r) => setTimeout(r, 1_000));
    expect(all.filter((l) => l.held)).to.deep.equal([holder]);
    expect(holder.valid()).to.equal(true);
    const doc = await server.use<{ holder: string; type: string }>(`${prefix}logs`).get('lease-one');
    expect(doc.type).to.equal('lease');
    expect(doc.holder).to.equal(['a', 'b', 'c'][all.indexOf(holder)]);
  });

  it('a holder cut off from the store gives up before another takes over, which then holds it alone', async () => {
    const proxy = await startTcpProxy(couchUrl());
    proxies.push(proxy);
    const first = lease('lease-two', 'first', proxy.url);
    first.start();
    await eventually(() => first.held, 5_000, 'first holds the lease');
    const events: string[] = [];
    first.on('lost', () => events.push('first lost'));
    const second = lease('lease-two', 'second');
    second.on('acquired', () => events.push('second acquired'));
    second.start();
    proxy.cut(); // the first can neither renew nor learn anything
    await eventually(() => second.held, 10_000, 'second takes over');
    expect(first.valid()).to.equal(false);
    await eventually(() => events.includes('first lost'), 5_000, 'first noticed');
    // whatever order the events arrived in, the first had stopped acting (valid() false) by then
    expect(events).to.include('second acquired');
    proxy.restore();
    // back on the network, the old holder stays deposed: its renewal with an old revision gets 409
    await new Promise((r) => setTimeout(r, 900));
    expect(first.held).to.equal(false);
    expect(second.held).to.equal(true);
  });

  it('release() hands the lease back (holder null), and a runtime standing by takes it at its next look', async () => {
    const a = lease('lease-three', 'a', couchUrl(), 3_000);
    a.start();
    await eventually(() => a.held, 5_000, 'a holds the lease');
    const b = lease('lease-three', 'b', couchUrl(), 3_000);
    b.start();
    await a.release();
    expect(a.held).to.equal(false);
    const doc = await server.use<{ holder: string | null }>(`${prefix}logs`).get('lease-three');
    expect(doc.holder).to.equal(null);
    await eventually(() => b.held, 10_000, 'b takes the released lease');
    const now = await server.use<{ holder: string | null }>(`${prefix}logs`).get('lease-three');
    expect(now.holder).to.equal('b');
  });

  it('valid() turns false as soon as a period has passed since the last renewal that landed - a paused holder checks it before acting', async () => {
    let clock = Date.now();
    const l = new Lease({ db: server.use(`${prefix}logs`), id: 'lease-four', holder: 'paused', leaseMs: 60_000, logger: silentLogger, now: () => clock });
    l.on('error', () => undefined);
    leases.push(l);
    l.start();
    await eventually(() => l.held, 5_000, 'held');
    expect(l.valid()).to.equal(true);
    clock += 59_000;
    expect(l.valid()).to.equal(true);
    clock += 1_000; // as a process resumed after a pause finds it, before any timer has run
    expect(l.valid()).to.equal(false);
  });
});
