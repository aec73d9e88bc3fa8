/**
 * `livelycouch deploy <dir>`: pushes `events/*.json` and `workers/<name>/` folders
 * (a `doc.json` plus its files as attachments) into the databases, as the original
 * project's event-subscribers/ and workers-source/ folders were.
 *
 * Two phases: the whole folder is read and checked first (JSON, the delegate file, the same
 * rules validate_doc_update applies), so a bad folder writes nothing and its error names the
 * file; then only documents whose content changed are written, so redeploying is cheap and
 * leaves revisions alone.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type { DocumentScope } from '../store/couch.ts';
import { LivelyError, describeError } from '../shared/errors.ts';
import { compiledRules } from '../events/rules.ts';
import { bundleFolder, checkWorkerCode, kFolderBundle, kFolderBundleMap } from '../workers/folder-bundle.ts';
import type { WorkerSpec } from '../workers/revision.ts';

type Db = DocumentScope<Record<string, unknown>>;
type Doc = Record<string, unknown>;

const kContentTypes: Record<string, string> = {
  '.js': 'application/javascript', '.mjs': 'application/javascript', '.cjs': 'application/javascript',
  '.ts': 'application/typescript', '.json': 'application/json', '.py': 'text/x-python', '.sh': 'text/x-sh',
  '.rb': 'text/x-ruby', '.pl': 'text/x-perl', '.txt': 'text/plain', '.html': 'text/html',
};

export type DeployKind = 'event' | 'worker';
export type DeployAction = 'created' | 'updated' | 'unchanged' | 'deleted';

export interface DeployStep { kind: DeployKind; id: string; action: DeployAction }

export interface DeployReport {
  /** ids written (created or updated). */
  written: string[];
  unchanged: string[];
  /** every document, in order: workers first, then events. */
  steps: DeployStep[];
  /** what was written but will not run as it stands: an event naming a worker that is in neither the app nor the database. */
  warnings: string[];
}

/** One document read from the folder, checked, not yet written. */
export interface PlannedDoc { kind: DeployKind; id: string; doc: Doc; source: string }

export interface DeployOptions {
  /**
   * Documents deployed from this folder before (by `dev`) whose files are gone now: they are
   * deleted when they still carry a deploy digest, i.e. nobody replaced them by hand.
   */
  previous?: ReadonlyArray<{ kind: DeployKind; id: string }>;
}

const bad = (file: string, reason: string) => new LivelyError('LC_BAD_REQUEST', `${file}: ${reason}`);

async function kindOf(p: string): Promise<'file' | 'dir' | undefined> {
  try {
    const s = await stat(p);
    return s.isDirectory() ? 'dir' : s.isFile() ? 'file' : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw bad(p, describeError(err));
  }
}

async function readJson(file: string): Promise<Doc> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw bad(file, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : describeError(err));
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw bad(file, `not valid JSON (${describeError(err)})`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw bad(file, 'must hold a JSON object');
  // `$schema` points the user's editor at the document's JSON Schema; the store need not keep it.
  delete (doc as Doc).$schema;
  return doc as Doc;
}

/** Names in `dir` that are not hidden or editor leftovers (`.x.swp`, `x~`, `#x#`). */
async function entries(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => !n.startsWith('.') && !n.endsWith('~') && !n.startsWith('#')).sort();
  } catch (err) {
    throw bad(dir, describeError(err));
  }
}

async function readWorker(folder: string, name: string): Promise<PlannedDoc> {
  const docFile = path.join(folder, 'doc.json');
  const doc = await readJson(docFile);
  if (doc._attachments !== undefined) throw bad(docFile, '_attachments come from the files of the folder; remove the field');
  doc._id ??= name;
  if (typeof doc._id !== 'string' || doc._id === '') throw bad(docFile, '_id: must be a non-empty string');
  const attachments: Record<string, { content_type: string; data: string }> = {};
  // A package.json makes the folder an npm package: its node_modules are bundled, not attached.
  const hasPackage = (await kindOf(path.join(folder, 'package.json'))) === 'file';
  for (const file of await entries(folder)) {
    if (file === 'doc.json' || (hasPackage && file === 'node_modules')) continue;
    const p = path.join(folder, file);
    const k = await kindOf(p);
    if (k === 'dir') throw bad(p, 'a worker folder holds files only (each becomes one attachment)');
    if (k !== 'file') continue; // vanished between readdir and stat (an editor's temporary file)
    let data: Buffer;
    try { data = await readFile(p); } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw bad(p, describeError(err));
    }
    attachments[file] = { content_type: kContentTypes[path.extname(file)] ?? 'application/octet-stream', data: data.toString('base64') };
  }
  if (typeof doc.delegate === 'string' && doc.delegate !== '' && !Object.hasOwn(attachments, doc.delegate)) {
    throw bad(docFile, `delegate "${doc.delegate}" is not a file in ${folder}`);
  }
  const problem = compiledRules().workerProblem({ ...doc, _attachments: attachments });
  if (problem) throw bad(docFile, problem);
  const type = doc.type ?? 'node';
  if ((type === 'node' || type === 'isolate') && typeof doc.delegate === 'string') {
    if (hasPackage) {
      if (attachments[kFolderBundle] || attachments[kFolderBundleMap]) throw bad(path.join(folder, kFolderBundle), 'this name is the bundle deploy makes; rename the file');
      const platform = type === 'isolate' ? 'neutral' : 'node';
      const built = await bundleFolder(folder, doc.delegate, platform);
      attachments[kFolderBundle] = { content_type: 'application/javascript', data: Buffer.from(built.code).toString('base64') };
      attachments[kFolderBundleMap] = { content_type: 'application/json', data: Buffer.from(built.map).toString('base64') };
      doc.bundled = { from: doc.delegate };
      doc.delegate = kFolderBundle;
    }
    await checkWorkerCode(folder, workerSpecOf(doc, attachments));
  }
  doc._attachments = attachments;
  return { kind: 'worker', id: doc._id, doc, source: docFile };
}

/** The document as the runtime would see it, for a bundle check before anything is written. */
function workerSpecOf(doc: Doc, attachments: Record<string, { content_type: string; data: string }>): WorkerSpec {
  return {
    id: String(doc._id), rev: 'deploy', type: String(doc.type ?? 'node'),
    isolation: doc.isolation === 'process' ? 'process' : 'thread',
    delegate: String(doc.delegate),
    attachments: Object.fromEntries(Object.entries(attachments).map(([n, a]) => [n, { contentType: a.content_type, data: Buffer.from(a.data, 'base64') }])),
    arguments: {}, env: {}, couch: false,
    limits: { timeout: 1, concurrency: 1, idle: 1 },
  };
}

async function readEvent(file: string): Promise<PlannedDoc> {
  const doc = await readJson(file);
  doc._id ??= path.basename(file, '.json');
  const problem = compiledRules().eventProblem(doc);
  if (problem) throw bad(file, problem);
  return { kind: 'event', id: doc._id as string, doc, source: file };
}

/** Reads and checks the whole app folder; throws on the first problem, naming its file. */
export async function readApp(dir: string): Promise<PlannedDoc[]> {
  if ((await kindOf(dir)) !== 'dir') throw bad(dir, 'no such folder');
  const wdir = path.join(dir, 'workers');
  const edir = path.join(dir, 'events');
  const hasWorkers = (await kindOf(wdir)) === 'dir';
  const hasEvents = (await kindOf(edir)) === 'dir';
  if (!hasWorkers && !hasEvents) throw bad(dir, 'an app folder holds events/*.json and workers/<name>/ folders; found neither');
  const out: PlannedDoc[] = [];
  const seen = new Map<string, string>();
  const add = (p: PlannedDoc) => {
    const key = `${p.kind}:${p.id}`;
    const other = seen.get(key);
    if (other) throw bad(p.source, `${p.kind} "${p.id}" is also defined by ${other}`);
    seen.set(key, p.source);
    out.push(p);
  };
  if (hasWorkers) {
    for (const name of await entries(wdir)) {
      const folder = path.join(wdir, name);
      if ((await kindOf(folder)) === 'dir') add(await readWorker(folder, name));
    }
  }
  if (hasEvents) {
    for (const file of await entries(edir)) {
      if (file.endsWith('.json') && (await kindOf(path.join(edir, file))) === 'file') add(await readEvent(path.join(edir, file)));
    }
  }
  return out;
}

/** A digest of what the user wrote, stored on the doc so an unchanged deploy writes nothing. */
function digest(doc: Doc): string {
  return createHash('sha256').update(JSON.stringify(doc)).digest('hex').slice(0, 32);
}

interface Current { rev: string; digest?: unknown }

async function currentDocs(db: Db, ids: string[]): Promise<Map<string, Current>> {
  const out = new Map<string, Current>();
  if (ids.length === 0) return out;
  const res = await db.fetch({ keys: ids });
  for (const row of res.rows as Array<{ key: string; doc?: Doc | null; error?: string }>) {
    if (row.doc) out.set(row.key, { rev: String(row.doc._rev), digest: row.doc.lively_deploy });
  }
  return out;
}

async function write(db: Db, docs: Doc[], kind: DeployKind): Promise<void> {
  if (docs.length === 0) return;
  const res = await db.bulk({ docs });
  const failed = (res as Array<{ id: string; error?: string; reason?: string }>).filter((r) => r.error);
  if (failed.length) {
    throw new LivelyError('LC_BAD_REQUEST', failed.map((f) => `${kind} ${f.id} not written (${f.error}${f.reason ? `: ${f.reason}` : ''})`).join('; '));
  }
}

/** Writes what changed in `plan` (from readApp); deletes `previous` documents no longer in it. */
export async function deployPlan(plan: PlannedDoc[], events: Db, workers: Db, opts: DeployOptions = {}): Promise<DeployReport> {
  const report: DeployReport = { written: [], unchanged: [], steps: [], warnings: [] };
  for (const kind of ['worker', 'event'] as const) {
    const db = kind === 'worker' ? workers : events;
    const mine = plan.filter((p) => p.kind === kind);
    const gone = (opts.previous ?? []).filter((p) => p.kind === kind && !mine.some((m) => m.id === p.id)).map((p) => p.id);
    const current = await currentDocs(db, [...mine.map((p) => p.id), ...gone]);
    const docs: Doc[] = [];
    const steps: DeployStep[] = [];
    for (const p of mine) {
      const hash = digest(p.doc);
      const cur = current.get(p.id);
      if (cur && cur.digest === hash) {
        report.unchanged.push(p.id);
        report.steps.push({ kind, id: p.id, action: 'unchanged' });
        continue;
      }
      docs.push({ ...p.doc, lively_deploy: hash, ...(cur ? { _rev: cur.rev } : {}) });
      steps.push({ kind, id: p.id, action: cur ? 'updated' : 'created' });
    }
    for (const id of gone) {
      const cur = current.get(id);
      if (!cur || typeof cur.digest !== 'string') continue;
      docs.push({ _id: id, _rev: cur.rev, _deleted: true });
      steps.push({ kind, id, action: 'deleted' });
    }
    await write(db, docs, kind);
    for (const s of steps) {
      report.steps.push(s);
      if (s.action !== 'deleted') report.written.push(s.id);
    }
  }
  report.warnings = await missingWorkers(plan, workers);
  return report;
}

/** The worker names an event document gives: `workers` (keyed or a list of `{name}`) and `response`. */
function workerNames(doc: Doc): string[] {
  const names = new Set<string>();
  const w = doc.workers;
  if (Array.isArray(w)) for (const e of w) { if (e && typeof (e as Doc).name === 'string') names.add((e as Doc).name as string); }
  else if (w && typeof w === 'object') for (const name of Object.keys(w)) names.add(name);
  if (typeof doc.response === 'string') names.add(doc.response);
  return [...names];
}

/**
 * Events of the app that name a worker found neither in the app nor in the workers database
 * (after this deploy's writes). Not an error: the worker may be deployed next, or on purpose
 * by hand later; until then each firing of that event fails for it.
 */
async function missingWorkers(plan: PlannedDoc[], workers: Db): Promise<string[]> {
  const inApp = new Set(plan.filter((p) => p.kind === 'worker').map((p) => p.id));
  const named = plan.filter((p) => p.kind === 'event').flatMap((p) => workerNames(p.doc).map((worker) => ({ event: p.id, source: p.source, worker })));
  const elsewhere = [...new Set(named.map((n) => n.worker).filter((w) => !inApp.has(w)))];
  if (elsewhere.length === 0) return [];
  const res = await workers.fetch({ keys: elsewhere });
  const stored = new Set((res.rows as Array<{ key: string; doc?: Doc | null }>).filter((r) => r.doc).map((r) => r.key));
  return named
    .filter((n) => !inApp.has(n.worker) && !stored.has(n.worker))
    .map((n) => `${n.source}: event "${n.event}" names worker "${n.worker}", which is neither in this app nor in the workers database`);
}

export async function deployDir(dir: string, events: Db, workers: Db, opts: DeployOptions = {}): Promise<DeployReport> {
  return deployPlan(await readApp(dir), events, workers, opts);
}
