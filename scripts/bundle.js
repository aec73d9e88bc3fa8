/**
 * Builds the JavaScript that LivelyCouch runs from: dist/cli.js (the command), dist/store-server.js
 * (the embedded store's child process), dist/store-spawn.js (what spawns that child early) and
 * dist/thread-runtime.js (the code of every worker thread),
 * each one ESM file with its source map. Packages stay imports from node_modules, but for undici
 * and nano (kInlined), which are bundled in. Plain JavaScript, so that
 * bin/livelycouch.js can rebuild a stale dist/ without tsx; scripts/build.ts runs it at install.
 *
 * The bundles keep resolving files next to their sources (workers-runtime/, templates/, examples/,
 * package.json): every `import.meta.url` in a project module becomes that module's source URL,
 * and `LIVELYCOUCH_DIST` tells code that it runs from the build (src/shared/dist.ts).
 * dist/inputs.json lists the source files and when the build began: bin/livelycouch.js compares it
 * with their modification times to find a stale build.
 */
import fs from 'node:fs';
import path from 'node:path';

export const kDistDir = 'dist';
export const kInputsFile = 'inputs.json';
/** what each bundle is built from, relative to the package root. */
export const kEntries = Object.freeze({
  cli: 'src/cli/main.ts',
  'store-server': 'src/store/embedded/server.ts',
  /** imported by bin/livelycouch.js to spawn the store's child before the runtime loads. */
  'store-spawn': 'src/store/embedded/spawn.ts',
  'thread-runtime': 'workers-runtime/thread/entry.ts',
});
/**
 * Built with the options bundleRuntimeFile (src/workers/bundler.ts) uses when it runs from the sources, and
 * left alone: it is copied under a name of its own content, and its own URL is how worker
 * stacks tell runtime frames from the worker's.
 */
const kAsIs = new Set(['thread-runtime']);
/** Built on its own, with its packages in it (storeExternals, expressPouchRoutes). */
const kStoreServer = 'store-server';
const kSelf = 'scripts/bundle.js';

/**
 * Why dist/ under `root` cannot be used as it is (missing, or a source changed after the build
 * began), or undefined when it can. Only file times are read: this runs on every command.
 */
export function staleReason(root) {
  let built;
  try {
    built = JSON.parse(fs.readFileSync(path.join(root, kDistDir, kInputsFile), 'utf8'));
  } catch {
    return `${kDistDir}/ is not built`;
  }
  if (!built || typeof built.startedAt !== 'number' || !Array.isArray(built.inputs)) return `${kDistDir}/${kInputsFile} is not readable`;
  for (const file of (built.outputs ?? []).filter((f) => f.endsWith('.js'))) {
    if (!fs.existsSync(path.join(root, kDistDir, file))) return `${kDistDir}/${file} is missing`;
  }
  for (const input of built.inputs) {
    const s = fs.statSync(path.join(root, input), { throwIfNoEntry: false });
    if (!s) return `${input} is gone since the build`;
    if (s.mtimeMs > built.startedAt) return `${input} changed since the build`;
  }
  return undefined;
}

/** Packages bundled into dist/ instead of imported from node_modules at run time. */
const kInlined = new Set(['undici', 'nano']);

/** The esbuild plugin that leaves every package but `inlined` (and their own files) as an import. */
function packagesExternalBut(inlined) {
  return {
    name: 'livelycouch-packages-external',
    setup(build) {
      // a bare specifier: a package, or one of node's own modules
      build.onResolve({ filter: /^[^./]/ }, (args) => {
        const name = args.path.startsWith('@') ? args.path.split('/').slice(0, 2).join('/') : args.path.split('/')[0];
        if (inlined.has(name)) return undefined;
        return { path: args.path, external: true };
      });
    },
  };
}

/**
 * The packages dist/store-server.js leaves to node's require: leveldown (a native addon) and
 * level (which holds a copy of its own), pouchdb-fauxton (files it serves; its route is off),
 * iconv-lite (a quarter of the bundle, in character tables it loads only for a body in another
 * charset than UTF-8), and those the store replaces in node's require cache before its packages
 * load: the stand-ins of src/store/embedded/lazy-*.ts (with pouchdb-find and
 * pouchdb-abstract-mapreduce, which hold copies of their own of those) and the ordered
 * pouchdb-bulkdocs-wrapper of src/store/embedded/bulk-order.ts.
 */
const kStoreExternal = new Set([
  'leveldown', 'level', 'pouchdb-fauxton', 'iconv-lite',
  'node-fetch', 'fetch-cookie', 'pouchdb-find', 'pouchdb-abstract-mapreduce', 'side-channel', 'multiparty',
  'pouchdb-bulkdocs-wrapper',
]);

/**
 * The esbuild plugin that leaves the packages of `external` to node's require, each required as
 * its importer would from where that lies in node_modules (not from dist/, which may find another
 * copy where an install nests one): the stand-ins and the packages then meet in any layout. The
 * importer's place is the chain of packages above it (`a`, then `b` in a/node_modules/b), which
 * the bundle resolves at run time from its own folder.
 */
export function storeExternals(external) {
  const kNamespace = 'livelycouch-store-external';
  return {
    name: 'livelycouch-store-externals',
    setup(build) {
      build.onResolve({ filter: /^[^./]/ }, (args) => {
        const name = args.path.startsWith('@') ? args.path.split('/').slice(0, 2).join('/') : args.path.split('/')[0];
        if (!external.has(name)) return undefined;
        const parts = args.importer.split(path.sep);
        const chain = [];
        for (let i = parts.indexOf('node_modules'); i >= 0 && i < parts.length - 1; i = parts.indexOf('node_modules', i + 1)) {
          chain.push(parts[i + 1].startsWith('@') ? `${parts[i + 1]}/${parts[i + 2]}` : parts[i + 1]);
        }
        if (chain.length === 0) return { path: args.path, external: true };
        return { path: JSON.stringify([chain, args.path]), namespace: kNamespace };
      });
      build.onLoad({ filter: /.*/, namespace: kNamespace }, (args) => {
        const [chain, request] = JSON.parse(args.path);
        return {
          contents: `const { createRequire } = require('node:module');
let from = require;
for (const name of ${JSON.stringify(chain)}) from = createRequire(from.resolve(name));
module.exports = from(${JSON.stringify(request)});
`,
          loader: 'js',
        };
      });
    },
  };
}

/**
 * The esbuild plugin for express-pouchdb's `require('./' + file)` of its routes, which a bundle
 * cannot follow: the one call becomes a table of the lib/ and lib/routes/ files it can name.
 */
function expressPouchRoutes() {
  const kCall = "require('./' + file)(app);";
  return {
    name: 'livelycouch-express-pouchdb-routes',
    setup(build) {
      build.onLoad({ filter: /[\\/]express-pouchdb[\\/]lib[\\/]index\.js$/ }, async (args) => {
        const text = await fs.promises.readFile(args.path, 'utf8');
        if (!text.includes(kCall)) throw new Error(`${args.path} no longer holds ${kCall}: see scripts/bundle.js`);
        const lib = path.dirname(args.path);
        const names = (dir, pre) => fs.readdirSync(path.join(lib, dir)).filter((f) => f.endsWith('.js')).map((f) => pre + f.slice(0, -3));
        const table = [...names('.', ''), ...names('routes', 'routes/')]
          .map((n) => `${JSON.stringify(n)}: () => require(${JSON.stringify(`./${n}`)})`).join(', ');
        return { contents: text.replace(kCall, `({ ${table} })[file]()(app);`), loader: 'js' };
      });
    },
  };
}

/** The esbuild plugin that gives each project module its own source URL as `import.meta.url`. */
function sourceUrls(root, outDir) {
  const projectFile = /\.(ts|js|mjs)$/;
  return {
    name: 'livelycouch-source-urls',
    setup(build) {
      build.onLoad({ filter: projectFile }, async (args) => {
        if (args.path.includes(`${path.sep}node_modules${path.sep}`) || !args.path.startsWith(root + path.sep)) return undefined;
        const text = await fs.promises.readFile(args.path, 'utf8');
        if (!text.includes('import.meta.url')) return undefined;
        const rel = path.relative(outDir, args.path).split(path.sep).join('/');
        const url = `new URL(${JSON.stringify(rel)}, import.meta.url).href`;
        return { contents: text.replaceAll('import.meta.url', url), loader: args.path.endsWith('.ts') ? 'ts' : 'js' };
      });
    },
  };
}

/**
 * `<root>/dist/store-server.js`, built again first when a source changed since the build (as the
 * command does): the embedded store as users run it, its packages bundled. Specs and benchmarks
 * start their stores from it; from the sources through tsx, the store's packages would resolve
 * every `require` they make at run time through tsx's hooks (readable-stream 1 requires a module
 * on every stream it makes), which users never pay.
 */
export async function builtStoreServer(packageRoot) {
  const root = path.resolve(packageRoot);
  if (staleReason(root) !== undefined) await bundle(root);
  return path.join(root, kDistDir, `${kStoreServer}.js`);
}

/**
 * Builds every bundle of kEntries into `<root>/dist/` and then writes dist/inputs.json. Each file is
 * written beside its place and renamed into it, so a command starting meanwhile never reads half a file.
 * Returns the source files the bundles were built from.
 */
export async function bundle(packageRoot) {
  const root = path.resolve(packageRoot);
  const esbuild = await import('esbuild');
  const startedAt = Date.now();
  const outDir = path.join(root, kDistDir);
  let previous = {};
  try { previous = JSON.parse(await fs.promises.readFile(path.join(outDir, kInputsFile), 'utf8')) ?? {}; } catch { /* first build */ }
  const entries = (asIs, except) => Object.fromEntries(Object.entries(kEntries)
    .filter(([name]) => kAsIs.has(name) === asIs && name !== except)
    .map(([name, file]) => [name, path.join(root, file)]));
  const common = {
    absWorkingDir: root, outdir: outDir, bundle: true, write: false, format: 'esm', platform: 'node',
    target: 'node20', packages: 'external', metafile: true, logLevel: 'silent',
  };
  // undici and nano go into the bundle: pure JavaScript, and loading their hundred-odd files one
  // by one was most of what the runtime's start read from disk
  const inlined = {
    ...common, packages: undefined, plugins: [sourceUrls(root, outDir), packagesExternalBut(kInlined)],
    banner: { js: "import { createRequire as __lcCreateRequire } from 'node:module'; const require = __lcCreateRequire(import.meta.url);" },
  };
  const results = await Promise.all([
    // split: what only some commands need is in chunks of its own, loaded when one runs
    esbuild.build({
      ...inlined, entryPoints: entries(false, kStoreServer), sourcemap: 'linked', splitting: true,
      define: { LIVELYCOUCH_DIST: 'true' },
    }),
    esbuild.build({ ...common, entryPoints: entries(true) }),
    // the store's child runs alone: its packages are in its own file (but kStoreExternal)
    esbuild.build({
      ...inlined, entryPoints: { [kStoreServer]: path.join(root, kEntries[kStoreServer]) }, sourcemap: 'linked', minifyWhitespace: true, minifySyntax: true,
      define: { LIVELYCOUCH_DIST: 'true' },
      plugins: [sourceUrls(root, outDir), storeExternals(kStoreExternal), expressPouchRoutes()],
    }),
  ]);
  await fs.promises.mkdir(outDir, { recursive: true });
  const files = results.flatMap((r) => r.outputFiles);
  for (const file of files) {
    const tmp = `${file.path}.${process.pid}.tmp`;
    await fs.promises.writeFile(tmp, file.contents);
    await fs.promises.rename(tmp, file.path);
  }
  const outputs = files.map((f) => path.relative(outDir, f.path).split(path.sep).join('/')).sort();
  // what the last build wrote and this one did not: chunks are named by a hash of their content
  for (const old of previous.outputs ?? []) {
    if (typeof old === 'string' && !outputs.includes(old) && !old.includes('/')) await fs.promises.rm(path.join(outDir, old), { force: true });
  }
  const inputs = [...new Set([...results.flatMap((r) => Object.keys(r.metafile.inputs)), kSelf])]
    // files of this package: not packages, nor the modules a plugin made (`namespace:path`)
    .filter((f) => !f.includes('node_modules/') && !/^[\w-]+:/.test(f))
    .sort();
  const stamp = path.join(outDir, kInputsFile);
  await fs.promises.writeFile(`${stamp}.${process.pid}.tmp`, JSON.stringify({ startedAt, outputs, inputs }, null, 1) + '\n');
  await fs.promises.rename(`${stamp}.${process.pid}.tmp`, stamp);
  return inputs;
}
