/**
 * A worker revision's attachments as files: the private directory a process worker runs in.
 * Names are checked before anything is written, so a hostile document cannot place a file
 * outside its directory or drop a dotfile (`.bashrc`, `.profile`) that an interpreter would read.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { LivelyError } from '../shared/errors.ts';
import { compiledRules } from '../events/rules.ts';
import type { WorkerSpec } from './revision.ts';

/** Why an attachment name may not become a file name, or undefined when it may. */
export function attachmentNameProblem(name: string): string | undefined {
  // The rule validate_doc_update applies on write; checked again here before any file is written.
  return compiledRules().attachmentNameProblem(name) ?? undefined;
}

/** Throws LC_BAD_ATTACHMENT_NAME for the first bad name, LC_INVALID_WORKER when the delegate is missing. */
export function checkAttachments(spec: Pick<WorkerSpec, 'id' | 'delegate' | 'attachments'>): void {
  for (const name of Object.keys(spec.attachments)) {
    const problem = attachmentNameProblem(name);
    if (problem) {
      throw new LivelyError('LC_BAD_ATTACHMENT_NAME', `worker "${spec.id}": attachment "${name}" rejected: ${problem}`, { attachment: name, problem });
    }
  }
  if (!Object.hasOwn(spec.attachments, spec.delegate)) {
    throw new LivelyError('LC_INVALID_WORKER', `worker "${spec.id}": delegate "${spec.delegate}" is not one of its attachments`);
  }
}

/**
 * Ids and revisions come from documents, so they are encoded into a single safe path segment
 * (`_design/x` or `..` must not climb out of `<dataDir>/workers`).
 */
export function safeSegment(s: string): string {
  const enc = encodeURIComponent(s).replace(/\./g, '%2E');
  return enc.length > 0 ? enc : '%00';
}

export function revisionDir(dataDir: string, spec: Pick<WorkerSpec, 'id' | 'rev'>): string {
  return path.join(path.resolve(dataDir), 'workers', safeSegment(spec.id), safeSegment(spec.rev));
}

/**
 * Writes the revision's files once and returns the directory. The files are written into a
 * temporary sibling that is renamed into place, so a directory that exists is always complete
 * (a crash mid-write leaves only a temporary directory behind) and concurrent writers agree.
 */
export async function writeRevisionFiles(dataDir: string, spec: Pick<WorkerSpec, 'id' | 'rev' | 'delegate' | 'attachments'>): Promise<string> {
  checkAttachments(spec);
  const dir = revisionDir(dataDir, spec);
  if (await isDir(dir)) return dir;
  const parent = path.dirname(dir);
  await mkdir(parent, { recursive: true, mode: 0o700 });
  const tmp = `${dir}.tmp-${randomBytes(6).toString('hex')}`;
  await mkdir(tmp, { mode: 0o700 });
  try {
    for (const [name, att] of Object.entries(spec.attachments)) {
      const file = path.join(tmp, name);
      if (path.dirname(file) !== tmp) throw new LivelyError('LC_BAD_ATTACHMENT_NAME', `worker "${spec.id}": attachment "${name}" would leave its directory`);
      await writeFile(file, att.data, { mode: 0o600, flag: 'wx' });
    }
    await rename(tmp, dir);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    // another writer finished first: its directory is complete
    if ((err as NodeJS.ErrnoException).code === 'ENOTEMPTY' || (err as NodeJS.ErrnoException).code === 'EEXIST') return dir;
    throw err;
  }
  return dir;
}

/** Removes a revision's directory once no process uses it any more. */
export async function removeRevisionFiles(dataDir: string, spec: Pick<WorkerSpec, 'id' | 'rev'>): Promise<void> {
  await rm(revisionDir(dataDir, spec), { recursive: true, force: true });
}

async function isDir(p: string): Promise<boolean> {
  try { return (await stat(p)).isDirectory(); } catch { return false; }
}
