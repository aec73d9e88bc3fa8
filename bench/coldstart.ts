/**
 * A node worker's cold start: a new revision to its first completed message — bundling its
 * attachments, loading the bundle in a thread and running the message — measured on the
 * thread dispatcher, median of many revisions. Prints one JSON line.
 */
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { ThreadDispatcher } from '../src/workers/dispatch/thread.ts';
import type { WorkerSpec } from '../src/workers/revision.ts';
import type { WorkerMessage } from '../src/shared/message.ts';

const REVISIONS = Number(process.env.BENCH_COLD_REVISIONS ?? 30);

function spec(rev: number): WorkerSpec {
  const code = (s: string) => ({ contentType: 'application/javascript', data: Buffer.from(s) });
  return {
    id: 'cold', rev: `${rev}-x`, type: 'node', isolation: 'thread', delegate: 'index.js',
    attachments: {
      'index.js': code(`const { greet } = require('./lib.js');\nmodule.exports = async (msg) => ({ rev: ${rev}, text: greet(msg.parameters.name) });`),
      'lib.js': code(`exports.greet = (n) => 'hello ' + n;`),
    },
    arguments: {}, limits: { timeout: 30_000, concurrency: 8, idle: 60_000 }, env: {}, couch: false,
  };
}

async function main(): Promise<void> {
  // the bundles' cache goes with the run
  const cacheDir = mkdtempSync(path.join(os.tmpdir(), 'lively-cold-'));
  const d = new ThreadDispatcher({ cacheDir, threads: 2 });
  const times: number[] = [];
  try {
    await d.start();
    for (let rev = 1; rev <= REVISIONS; rev++) {
      const s = spec(rev);
      const message: WorkerMessage = { activation: `a${rev}`, event: 'e', worker: 'cold', trigger: 'http', arguments: {}, parameters: { name: 'x' } };
      const t0 = performance.now();
      const out = await d.dispatch({ spec: s, message, onEmit: () => {} });
      times.push(performance.now() - t0);
      if (out.status !== 'ok' || (out.result as { rev: number }).rev !== rev) throw new Error(`revision ${rev} failed: ${JSON.stringify(out)}`);
      await d.retire('cold', s.rev);
    }
  } finally {
    await d.close(1_000);
    rmSync(cacheDir, { recursive: true, force: true });
  }
  const sorted = [...times].sort((a, b) => a - b);
  const q = (p: number) => +sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!.toFixed(2);
  process.stdout.write(JSON.stringify({ revisions: REVISIONS, medianMs: q(0.5), p90Ms: q(0.9), maxMs: q(1) }) + '\n');
}

main().catch((err) => { console.error(err); process.exit(1); });
