/**
 * `livelycouch new <dir>`: a new app folder from templates/app, with the worker types and the
 * documents' JSON Schemas beside it so that editors complete and check what the user writes.
 */
import { cp, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LivelyError } from '../shared/errors.ts';

const kRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const kTemplateDir = path.join(kRoot, 'templates', 'app');
const kTextFiles = /\.(json|md|ts|js|py)$/;

/** The app's package name and the database its changes trigger follows, from the folder's name. */
export function appNames(dir: string): { name: string; db: string } {
  const base = path.basename(path.resolve(dir)).toLowerCase();
  const name = base.replace(/[^a-z0-9._-]+/g, '-').replace(/^[._-]+/, '') || 'app';
  const db = `${name.replace(/[^a-z0-9_]+/g, '_').replace(/^[^a-z]+/, '') || 'app'}_notes`;
  return { name, db };
}

/** Creates the app; refuses a folder that exists with anything in it. Returns the files written. */
export async function newApp(dir: string): Promise<string[]> {
  const target = path.resolve(dir);
  const existing = await readdir(target).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw new LivelyError('LC_BAD_REQUEST', `${dir}: ${err.message}`);
  });
  if (existing.length > 0) throw new LivelyError('LC_BAD_REQUEST', `${dir}: the folder is not empty; give a new or empty folder`);
  const vars = appNames(target);
  await mkdir(target, { recursive: true });
  await cp(kTemplateDir, target, { recursive: true });
  await cp(path.join(kRoot, 'schemas'), path.join(target, 'schemas'), { recursive: true });
  await mkdir(path.join(target, 'types'), { recursive: true });
  await cp(path.join(kRoot, 'types', 'worker.d.ts'), path.join(target, 'types', 'livelycouch-worker.d.ts'));
  const written: string[] = [];
  await (async function fill(d: string): Promise<void> {
    for (const name of (await readdir(d)).sort()) {
      const p = path.join(d, name);
      if ((await stat(p)).isDirectory()) { await fill(p); continue; }
      written.push(path.relative(target, p));
      if (!kTextFiles.test(name)) continue;
      const text = await readFile(p, 'utf8');
      const out = text.replace(/\{\{(name|db)\}\}/g, (_m, k: 'name' | 'db') => vars[k]);
      if (out !== text) await writeFile(p, out);
    }
  })(target);
  return written;
}
