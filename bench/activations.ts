/**
 * How fast activation records are read back from a busy day: BATCHES batches of PER records
 * (one flush a second at PER triggers a second; every 20th activation failed) written to an
 * embedded store in memory, then the median time of a lookup by id, the newest page, a
 * filtered page, a page of 1,000, and a page of a filter that matches nothing (which answers
 * after its reading budget with a cursor). JSON on stdout.
 *
 *   node --no-node-snapshot --import tsx bench/activations.ts     (BATCHES, PER to change the size)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { builtStore } from './built-store.ts';
import { connect } from '../src/store/couch.ts';
import { ActivationLog } from '../src/activations/recorder.ts';
import { silentLogger } from '../src/shared/logger.ts';

const BATCHES = Number(process.env.BATCHES ?? 120);
const PER = Number(process.env.PER ?? 2_000);

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lively-bench-activations-'));
const store = await builtStore({ dataDir, memory: true });
await store.start();
try {
  const log = new ActivationLog(connect(store.url), { prefix: 'bench_', retentionDays: 7, maxRecords: 1e9, logger: silentLogger, maxBuffer: 1e9 });
  const t0 = Date.UTC(2026, 6, 1, 10);
  const ids: string[] = [];
  let recordNs = 0;
  const write0 = performance.now();
  for (let b = 0; b < BATCHES; b++) {
    const r0 = process.hrtime.bigint();
    for (let i = 0; i < PER; i++) {
      const started = t0 + b * 1000 + Math.floor((i * 1000) / PER);
      const n = b * PER + i;
      const activation = `bench000-${started.toString(36)}-${n.toString(36)}`;
      if (n % 997 === 0) ids.push(activation);
      const failed = n % 20 === 0;
      log.record({
        activation, events: ['hello'], trigger: 'http', path: '/hello', method: 'GET', started, durationMs: 1,
        workers: [{ worker: 'hello', status: failed ? 'error' : 'ok', logs: [], durationMs: 1, ...(failed ? { error: { code: 'LC_WORKER_ERROR', message: 'failed' } } : {}) }],
        input: { trigger: 'http', method: 'GET', path: '/hello', params: { n } },
      });
    }
    recordNs += Number(process.hrtime.bigint() - r0);
    await log.flush();
  }
  const writeMs = performance.now() - write0;

  const median = async (n: number, fn: (i: number) => Promise<unknown>): Promise<number> => {
    const ts: number[] = [];
    for (let i = 0; i < n; i++) {
      const a = performance.now();
      await fn(i);
      ts.push(performance.now() - a);
    }
    return Math.round(ts.sort((x, y) => x - y)[n >> 1]! * 10) / 10;
  };
  const out = {
    records: BATCHES * PER,
    batches: BATCHES,
    recordNsPerRecord: Math.round(recordNs / (BATCHES * PER)),
    writeMs: Math.round(writeMs),
    getByIdMs: await median(30, (i) => log.get(ids[(i * 7) % ids.length]!)),
    newestPage20Ms: await median(10, () => log.query({ limit: 20 })),
    errorsPage20Ms: await median(10, () => log.query({ limit: 20, status: 'error' })),
    page1000Ms: await median(5, () => log.query({ limit: 1000 })),
    noMatchPageMs: await median(3, () => log.query({ limit: 20, event: 'nothing' })),
  };
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
} finally {
  await store.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
}
