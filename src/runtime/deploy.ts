/**
 * `livelycouch deploy <dir>`: pushes `events/*.json` and `workers/<name>/` folders
 * (a `doc.json` plus its files as attachments) into the databases, as the original
 * project's event-subscribers/ and workers-source/ folders were. Documents are only
 * written when their content changed, so redeploying is cheap and leaves revisions alone.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type { DocumentScope } from 'nano';
import { LivelyError } from '../shared/errors.ts';

type Db = DocumentScope<Record<string, unknown>>;
type Doc = Record<string, unknown>;

const TYPES: Record<string, string> = {
  '.js': 'application/javascript', '.mjs': 'application/javascript', '.cjs': 'application/javascript',
  '.ts': 'application/typescript', '.json': 'application/json', '.py': 'text/x-python', '.sh': 'text/x-sh',
  '.rb': 'text/x-ruby', '.pl': 'text/x-perl', '.txt': 'text/plain', '.html': 'text/html',
};

export interface DeployReport { written: string[]; unchanged: string[] }

async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

async function readJson(file: string): Promise<Doc> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Doc;
  } catch (err) {
    throw new LivelyError('LC_BAD_REQUEST', `${file}: ${(err as Error).message}`);
  }
}

/** A digest of what the user wrote, stored on the doc so an unchanged deploy writes nothing. */
function digest(doc: Doc): string {
  return createHash('sha256').update(JSON.stringify(doc)).digest('hex').slice(0, 32);
}

async function upsert(db: Db, doc: Doc, report: DeployReport): Promise<void> {
  const id = String(doc._id);
  const hash = digest(doc);
  let rev: string | undefined;
  try {
    const cur = await db.get(id);
    if (cur.lively_deploy === hash) { report.unchanged.push(id); return; }
    rev = cur._rev;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) throw err;
  }
  await db.insert({ ...doc, lively_deploy: hash, ...(rev ? { _rev: rev } : {}) });
  report.written.push(id);
}

export async function deployDir(dir: string, events: Db, workers: Db): Promise<DeployReport> {
  const report: DeployReport = { written: [], unchanged: [] };
  const wdir = path.join(dir, 'workers');
  if (await exists(wdir)) {
    for (const name of (await readdir(wdir)).sort()) {
      const folder = path.join(wdir, name);
      if (!(await stat(folder)).isDirectory()) continue;
      const doc = await readJson(path.join(folder, 'doc.json'));
      doc._id ??= name;
      const attachments: Record<string, { content_type: string; data: string }> = {};
      for (const file of (await readdir(folder)).sort()) {
        if (file === 'doc.json' || file.startsWith('.')) continue;
        const data = await readFile(path.join(folder, file));
        attachments[file] = { content_type: TYPES[path.extname(file)] ?? 'application/octet-stream', data: data.toString('base64') };
      }
      doc._attachments = attachments;
      await upsert(workers, doc, report);
    }
  }
  const edir = path.join(dir, 'events');
  if (await exists(edir)) {
    for (const file of (await readdir(edir)).sort()) {
      if (!file.endsWith('.json')) continue;
      const doc = await readJson(path.join(edir, file));
      doc._id ??= path.basename(file, '.json');
      await upsert(events, doc, report);
    }
  }
  return report;
}
