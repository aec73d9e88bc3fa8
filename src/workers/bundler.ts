/**
 * Bundles with esbuild: a worker revision from its attachments (through a namespaced plugin:
 * they live in memory), and the code that runs inside threads (bundleRuntimeFile). Bare imports
 * stay external (resolved at run time by the thread's `require`, which refuses paths, so a
 * dynamic require never reaches the runtime's source); isolates get no node builtins. Cached by
 * (id, revision) in memory and on disk, with a source map so that worker stacks name the
 * user's files (workers-runtime/stack.ts).
 */
import { createHash } from 'node:crypto';
import { builtinModules } from 'node:module';
import { access, mkdir, readFile, readdir, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { kDistDir } from '../shared/dist.ts';
import { LivelyError } from '../shared/errors.ts';
import { specKey, type WorkerSpec } from './revision.ts';

export type BundlePlatform = 'node' | 'neutral';

export interface BundleOptions {
  platform: BundlePlatform;
  /** where bundles are kept across restarts; without it, memory only. */
  cacheDir?: string;
}

export interface Bundle {
  /** `<id>@<rev>`: what a thread uses to keep one evaluated copy per revision. */
  key: string;
  /** CommonJS, expecting `require`, `module`, `exports` from its caller. */
  code: string;
  /** its source map (JSON): sources are attachment names. */
  map: string;
  /** the cached file on disk, when a cacheDir was given; its map is `<file>.map`. */
  file?: string;
}

export interface BundlerStats {
  built: number;
  fromDisk: number;
  fromMemory: number;
}

/** The import that gives worker code the helper API (emit, log, couch). */
export const kHelperModule = 'livelycouch/worker';

const kNamespace = 'lc-attachment';
const kExtensions = ['', '.js', '.cjs', '.mjs', '.json', '/index.js'];
const kLoaders: Record<string, esbuild.Loader> = {
  '.js': 'js', '.cjs': 'js', '.mjs': 'js', '.json': 'json', '.ts': 'ts', '.txt': 'text',
  // pages and styles a worker serves as its response body
  '.html': 'text', '.css': 'text', '.svg': 'text',
};
const kBuiltins = new Set(builtinModules);
/** the project root, so that anything esbuild resolves by itself resolves here. */
const kModuleRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const isBuiltin = (p: string) => p.startsWith('node:') || kBuiltins.has(p) || kBuiltins.has(p.split('/')[0]!);

function fileKey(id: string): string {
  return createHash('sha256').update(id).digest('hex').slice(0, 24);
}

/** One cache (memory + disk). The runtime uses one per process; specs make their own. */
export class Bundler {
  private readonly memory = new Map<string, { rev: string; promise: Promise<Bundle> }>();
  private readonly counts: BundlerStats = { built: 0, fromDisk: 0, fromMemory: 0 };

  stats(): BundlerStats { return { ...this.counts }; }

  bundle(spec: WorkerSpec, opts: BundleOptions): Promise<Bundle> {
    const slot = `${opts.platform}\0${opts.cacheDir ?? ''}\0${spec.id}`;
    const held = this.memory.get(slot);
    if (held && held.rev === spec.rev) { this.counts.fromMemory++; return held.promise; }
    // A failure is kept too: the same revision would fail the same way on every trigger.
    const promise = this.load(spec, opts);
    this.memory.set(slot, { rev: spec.rev, promise });
    return promise;
  }

  /** Forgets a worker (document deleted); its files stay until the next revision replaces them. */
  forget(workerId: string): void {
    for (const k of this.memory.keys()) if (k.endsWith(`\0${workerId}`)) this.memory.delete(k);
  }

  private async load(spec: WorkerSpec, opts: BundleOptions): Promise<Bundle> {
    const key = specKey(spec);
    if (!opts.cacheDir) {
      const built = await build(spec, opts.platform);
      this.counts.built++;
      return { key, ...built };
    }
    const prefix = `${fileKey(spec.id)}-${opts.platform}-`;
    const base = `${prefix}${fileKey(spec.rev)}.cjs`;
    const file = path.join(opts.cacheDir, base);
    try {
      // The bundle is written after its map, so a bundle on disk has its map (a cache from
      // before maps existed has none: its stacks then stay as they are).
      const code = await readFile(file, 'utf8');
      const map = await readFile(`${file}.map`, 'utf8').catch(() => '');
      this.counts.fromDisk++;
      return { key, code, map, file };
    } catch { /* not cached yet */ }
    const built = await build(spec, opts.platform);
    this.counts.built++;
    await mkdir(opts.cacheDir, { recursive: true });
    const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(tmp, built.map);
    await rename(tmp, `${file}.map`);
    await writeFile(tmp, built.code);
    await rename(tmp, file);
    for (const name of await readdir(opts.cacheDir)) {
      if (name.startsWith(prefix) && name !== base && name !== `${base}.map` && (name.endsWith('.cjs') || name.endsWith('.cjs.map'))) {
        await unlink(path.join(opts.cacheDir, name)).catch(() => {});
      }
    }
    return { key, ...built, file };
  }
}

const defaultBundler = new Bundler();

/**
 * Bundles code that runs inside a thread (an entry under workers-runtime/) into one ESM file
 * under `cacheDir`, named `<name>-<hash of its content>.mjs`, so that it is written once per
 * version and threads need no TypeScript loader. Packages stay external. Resolves with the file.
 */
export async function bundleRuntimeFile(entry: string, cacheDir: string, name: string): Promise<string> {
  // Running from the build, scripts/bundle.js has bundled it already, as dist/<name>.js.
  const code = kDistDir
    ? await readFile(path.join(kDistDir, `${name}.js`))
    : (await esbuild.build({
      entryPoints: [entry], bundle: true, write: false, format: 'esm', platform: 'node',
      target: 'node20', packages: 'external', logLevel: 'silent',
    })).outputFiles[0]!.contents;
  const file = path.join(cacheDir, `${name}-${createHash('sha256').update(code).digest('hex').slice(0, 16)}.mjs`);
  try { await access(file); } catch {
    await mkdir(cacheDir, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, code);
    await rename(tmp, file);
  }
  return file;
}

/** Bundles one worker revision (cached per process, and on disk under `cacheDir`). */
export function bundleWorker(spec: WorkerSpec, opts: BundleOptions): Promise<Bundle> {
  return defaultBundler.bundle(spec, opts);
}

function resolveAttachment(spec: WorkerSpec, from: string, request: string): string | undefined {
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), request));
  if (base.startsWith('..')) return undefined;
  for (const ext of kExtensions) {
    const name = (base + ext).replace(/^\.\//, '');
    if (Object.hasOwn(spec.attachments, name)) return name;
  }
  return undefined;
}

function attachmentPlugin(spec: WorkerSpec, platform: BundlePlatform): esbuild.Plugin {
  return {
    name: 'livelycouch-attachments',
    setup(build) {
      build.onResolve({ filter: /.*/ }, (args) => {
        if (args.kind === 'entry-point') return { path: spec.delegate, namespace: kNamespace };
        const p = args.path;
        if (p.startsWith('./') || p.startsWith('../') || p === '.' || p === '..') {
          const name = resolveAttachment(spec, args.importer, p);
          if (name === undefined) {
            return { errors: [{ text: `cannot find module '${p}' required from ${args.importer}: no such attachment` }] };
          }
          return { path: name, namespace: kNamespace };
        }
        if (p.startsWith('/') || /^[a-zA-Z]:[\\/]/.test(p)) {
          return { errors: [{ text: `absolute path '${p}' in ${args.importer}: workers may only load their own attachments and packages` }] };
        }
        if (p === kHelperModule) return { path: p, external: true };
        if (platform === 'neutral') {
          const what = isBuiltin(p) ? 'node builtin' : 'package';
          return { errors: [{ text: `${what} '${p}' imported by ${args.importer} is not available to isolate workers` }] };
        }
        return { path: p, external: true };
      });
      build.onLoad({ filter: /.*/, namespace: kNamespace }, (args) => {
        const att = spec.attachments[args.path]!;
        const loader = kLoaders[path.posix.extname(args.path)] ?? 'js';
        return { contents: att.data, loader, resolveDir: kModuleRoot };
      });
    },
  };
}

/** The name a bundle has inside esbuild (nothing is written): its map is named after it. */
const kOutfile = 'worker.cjs';

async function build(spec: WorkerSpec, platform: BundlePlatform): Promise<{ code: string; map: string }> {
  if (!Object.hasOwn(spec.attachments, spec.delegate)) {
    throw new LivelyError('LC_BUNDLE_FAILED',
      `worker '${spec.id}': delegate '${spec.delegate}' is not one of its attachments (${Object.keys(spec.attachments).join(', ') || 'none'})`,
      { file: spec.delegate });
  }
  try {
    const out = await esbuild.build({
      entryPoints: [spec.delegate],
      bundle: true,
      write: false,
      format: 'cjs',
      platform: platform === 'node' ? 'node' : 'neutral',
      target: 'node20',
      logLevel: 'silent',
      outfile: kOutfile,
      // External: the bundle carries no comment, and its map is read only when an error needs it.
      sourcemap: 'external',
      sourcesContent: false,
      plugins: [attachmentPlugin(spec, platform)],
    });
    const code = out.outputFiles.find((f) => f.path.endsWith(kOutfile))!.text;
    const map = out.outputFiles.find((f) => f.path.endsWith(`${kOutfile}.map`))?.text ?? '';
    return { code, map };
  } catch (err) {
    throw toBundleError(spec, err);
  }
}

function toBundleError(spec: WorkerSpec, err: unknown): LivelyError {
  const first = (err as esbuild.BuildFailure).errors?.[0];
  if (!first) return new LivelyError('LC_BUNDLE_FAILED', `worker '${spec.id}': ${(err as Error)?.message ?? String(err)}`);
  const loc = first.location;
  const file = loc?.file ? loc.file.replace(`${kNamespace}:`, '') : spec.delegate;
  const where = loc ? `${file}:${loc.line}:${loc.column}` : file;
  return new LivelyError('LC_BUNDLE_FAILED', `worker '${spec.id}': ${where}: ${first.text}`,
    { file, line: loc?.line, column: loc?.column });
}
