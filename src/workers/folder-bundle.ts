/**
 * What `deploy` and `dev` do with a node or isolate worker's code before writing anything:
 * bundle it as the runtime will, so that code that does not parse never reaches a database,
 * and — when the worker folder has a package.json — bundle its npm dependencies into it, so the
 * worker document carries everything it needs and runs on any runtime it is replicated to.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as esbuild from 'esbuild';
import { LivelyError } from '../shared/errors.ts';
import { Bundler, kHelperModule } from './bundler.ts';
import type { WorkerSpec } from './revision.ts';

/** The attachment that holds a worker folder's bundle, and the one with its source map. */
export const kFolderBundle = 'bundle.cjs';
export const kFolderBundleMap = 'bundle.cjs.map';

const bad = (where: string, reason: string) => new LivelyError('LC_BAD_REQUEST', `${where}: ${reason}`);

/** Bundles the attachments exactly as the runtime will; a failure names the file, line and column. */
export async function checkWorkerCode(folder: string, spec: WorkerSpec): Promise<void> {
  const platform = spec.type === 'isolate' ? 'neutral' : 'node';
  try {
    await new Bundler().bundle(spec, { platform });
  } catch (err) {
    const d = (err as LivelyError).details as { file?: string; line?: number; column?: number } | undefined;
    if (!(err instanceof LivelyError) || !d?.file) throw err;
    const text = err.message.replace(/^worker '[^']*': (\S+: )?/, '');
    throw bad(`${path.join(folder, d.file)}${d.line !== undefined ? `:${d.line}:${d.column}` : ''}`, text);
  }
}

/** The package a resolved file belongs to: `node_modules/<name>` or `node_modules/@scope/name`. */
function packageDirOf(file: string): string | undefined {
  const m = /^(.*[\\/]node_modules[\\/](?:@[^\\/]+[\\/])?[^\\/]+)/.exec(file);
  return m?.[1];
}

/** Whether a package ships or builds native code, which a bundle cannot carry. */
function isNative(dir: string): boolean {
  if (existsSync(path.join(dir, 'binding.gyp'))) return true;
  try {
    const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { gypfile?: boolean; binary?: unknown };
    if (pkg.gypfile || pkg.binary) return true;
  } catch { /* no package.json: judged by its files */ }
  const stack = [dir];
  while (stack.length) {
    const d = stack.pop()!;
    let names: import('node:fs').Dirent[];
    try { names = readdirSync(d, { withFileTypes: true }); } catch { continue; }
    for (const e of names) {
      if (e.isFile() && e.name.endsWith('.node')) return true;
      if (e.isDirectory() && e.name !== 'node_modules') stack.push(path.join(d, e.name));
    }
  }
  return false;
}

/** A `.node` file is left for the package check below, which names the package that has it. */
const kLeaveNativeFiles: esbuild.Plugin = {
  name: 'livelycouch-native',
  setup(build) {
    build.onResolve({ filter: /\.node$/ }, (args) => ({ path: args.path, external: true }));
  },
};

/**
 * Bundles a worker folder that has a package.json, its dependencies included, from the files on
 * disk (the folder's own node_modules, as `npm install` left it). Node builtins and the helper
 * API stay outside; a package with native code is refused by name.
 */
export async function bundleFolder(folder: string, delegate: string, platform: 'node' | 'neutral'): Promise<{ code: string; map: string }> {
  const packages = new Set<string>();
  let out: esbuild.BuildResult<{ write: false; metafile: true }>;
  try {
    out = await esbuild.build({
      absWorkingDir: path.resolve(folder),
      entryPoints: [delegate],
      bundle: true,
      write: false,
      metafile: true,
      format: 'cjs',
      platform: platform === 'node' ? 'node' : 'neutral',
      target: 'node20',
      logLevel: 'silent',
      outfile: kFolderBundle,
      sourcemap: 'external',
      sourcesContent: false,
      external: [kHelperModule],
      plugins: [kLeaveNativeFiles],
    });
  } catch (err) {
    const first = (err as esbuild.BuildFailure).errors?.[0];
    if (!first) throw err;
    const loc = first.location;
    throw bad(loc ? `${path.join(folder, loc.file)}:${loc.line}:${loc.column}` : path.join(folder, delegate), first.text);
  }
  for (const input of Object.keys(out.metafile.inputs)) {
    const dir = packageDirOf(path.resolve(folder, input));
    if (dir) packages.add(dir);
  }
  for (const dir of packages) {
    if (isNative(dir)) {
      const name = dir.split(/[\\/]node_modules[\\/]/).pop()!;
      throw bad(path.join(folder, 'package.json'), `package "${name}" has native code, which cannot be bundled into a worker document; run this worker as a process worker ("isolation": "process") with the package installed on the runtime's machine`);
    }
  }
  const code = out.outputFiles.find((f) => f.path.endsWith(kFolderBundle))!.text;
  const map = out.outputFiles.find((f) => f.path.endsWith(`${kFolderBundle}.map`))?.text ?? '';
  return { code, map };
}
