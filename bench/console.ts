/**
 * What the web console's live feed costs per activation record, with no console open and with
 * one open (a real HTTP connection reading the stream): records fed in rounds that alternate
 * the two, medians in ns per record. At a trigger rate R, an open console costs R × that much
 * CPU; `npm run bench` (scenarios bs and cs) measures the trigger rate itself side by side.
 *   node --no-node-snapshot --import tsx bench/console.ts
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ActivationRecord } from '../src/activations/recorder.ts';
import { ConsoleFeed } from '../src/server/console-feed.ts';

const kRecords = 1_000_000;
const kRounds = 7;

function records(n: number): ActivationRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    activation: `a${i}`, events: ['bench'], trigger: 'http', path: '/bench/thread', method: 'GET', started: Date.now(), durationMs: 0.2,
    workers: [{ worker: 'thread', status: 'ok', durationMs: 0.2, logs: [] }],
  }) as ActivationRecord);
}

async function main(): Promise<void> {
  const feed = new ConsoleFeed(() => ({ queued: 0, inFlight: 0, warm: 0 }));
  feed.start();
  const server = http.createServer((_req, res) => feed.attach(res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const recs = records(10_000);
  const feedFor = async (ms: number) => new Promise((r) => setTimeout(r, ms));

  async function measure(): Promise<number> {
    const t0 = process.hrtime.bigint();
    // in slices, so the flush timer and the socket get their turns as they would under load
    for (let done = 0; done < kRecords; done += recs.length) {
      for (let i = 0; i < recs.length; i++) feed.record(recs[i]!);
      await new Promise((r) => setImmediate(r));
    }
    return Number(process.hrtime.bigint() - t0) / kRecords;
  }

  const closed: number[] = [];
  const open: number[] = [];
  let bytes = 0;
  for (let round = 0; round < kRounds; round++) {
    closed.push(await measure());
    const req = http.get(url, (res) => res.on('data', (c: Buffer) => { bytes += c.length; }));
    await feedFor(50);
    open.push(await measure());
    req.destroy();
    await feedFor(50);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const result = { nsPerRecordClosed: +median(closed).toFixed(1), nsPerRecordOpen: +median(open).toFixed(1), streamBytes: bytes, rounds: kRounds, records: kRecords };
  feed.close();
  server.closeAllConnections();
  server.close();
  console.log(JSON.stringify(result));
}

await main();
