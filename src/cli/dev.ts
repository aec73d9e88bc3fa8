/**
 * `livelycouch dev <dir>`: deploy the folder, then push every change within a second.
 *
 * Changes are found by comparing a snapshot of the folder (name, size, mtime and inode of each
 * file) every few hundred ms, nudged at once by fs.watch where it works. A snapshot sees what
 * watchers miss or report oddly: files created in new folders, deletions, editors that write
 * a temporary file and rename it over the original. A deploy that fails (a half-typed JSON
 * file) is reported once and the documents stay as they were; the next change is tried again,
 * and a failure of the store itself is retried until it passes.
 */
import { readdir, stat } from 'node:fs/promises';
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { DocumentScope } from '../store/couch.ts';
import { describeError, isLivelyError } from '../shared/errors.ts';
import { deployDir, type DeployKind, type DeployReport } from '../core/deploy.ts';

type Db = DocumentScope<Record<string, unknown>>;

const kScanMs = 250;
const kSettleMs = 60;
const kRetryMs = 2_000;

/** One line per file: enough to see any edit, creation, deletion or rename. */
export async function snapshot(dir: string): Promise<string> {
  const out: string[] = [];
  async function walk(d: string, depth: number): Promise<void> {
    let names: string[];
    try { names = await readdir(d); } catch { out.push(`${d}:missing`); return; }
    for (const n of names.sort()) {
      const p = path.join(d, n);
      try {
        const s = await stat(p);
        if (s.isDirectory()) { if (depth < 3) await walk(p, depth + 1); } else out.push(`${p}:${s.size}:${s.mtimeMs}:${s.ino}`);
      } catch { /* gone while listing */ }
    }
  }
  await walk(dir, 0);
  return out.join('\n');
}

export interface DevOptions {
  dir: string;
  events: Db;
  workers: Db;
  out: (line: string) => void;
  err: (line: string) => void;
  /** report form: lines for people, or one JSON object per deploy. */
  json: boolean;
  format: (report: DeployReport) => string[];
}

export interface DevWatch { close(): void; deployed: Promise<void> }

export function devWatch(o: DevOptions): DevWatch {
  let last = '';
  let previous: Array<{ kind: DeployKind; id: string }> = [];
  let running = false;
  let again = false;
  let retry: NodeJS.Timeout | undefined;
  let closed = false;
  let first = true;
  /** the folder failed its checks at the last push: the next good one says so. */
  let broken = false;

  async function push(): Promise<void> {
    const snap = await snapshot(o.dir);
    if (snap === last) return;
    try {
      const report = await deployDir(o.dir, o.events, o.workers, { previous });
      last = snap;
      previous = report.steps.filter((s) => s.action !== 'deleted').map((s) => ({ kind: s.kind, id: s.id }));
      const changed = report.steps.some((s) => s.action !== 'unchanged');
      if (o.json) o.out(JSON.stringify(report));
      else if (changed || first) for (const line of o.format(report)) o.out(line);
      if (broken && !o.json) o.out(`fixed: ${o.dir} deploys again`);
      broken = false;
    } catch (err) {
      const reason = describeError(err);
      o.err(reason);
      if (isLivelyError(err, 'LC_BAD_REQUEST')) { last = snap; broken = true; } // the folder is wrong: wait for the next edit
      else { clearTimeout(retry); retry = setTimeout(kick, kRetryMs); } // the store is: try again
    } finally {
      first = false;
    }
  }

  function kick(): void {
    if (closed) return;
    if (running) { again = true; return; }
    running = true;
    push().catch((err) => o.err(describeError(err))).finally(() => {
      running = false;
      if (again) { again = false; setTimeout(kick, kSettleMs); }
    });
  }

  const deployed = (async () => { running = true; try { await push(); } finally { running = false; } })();
  const scan = setInterval(kick, kScanMs);
  let watcher: FSWatcher | undefined;
  let settle: NodeJS.Timeout | undefined;
  try {
    watcher = watch(o.dir, { recursive: true }, () => { clearTimeout(settle); settle = setTimeout(kick, kSettleMs); });
    watcher.on('error', () => { watcher?.close(); watcher = undefined; }); // the scan carries on alone
  } catch { /* recursive watching unsupported here: the scan finds changes */ }

  return {
    deployed,
    close() {
      closed = true;
      clearInterval(scan);
      clearTimeout(settle);
      clearTimeout(retry);
      watcher?.close();
    },
  };
}
