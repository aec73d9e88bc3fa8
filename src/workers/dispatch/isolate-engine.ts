/**
 * The isolate engine: the isolated-vm build that loads on the running Node. Each Node line needs
 * its own isolated-vm major, so package.json lists one optional wrapper per major
 * (isolate-engines/) whose `engines` lets npm install only the one for the line it runs on;
 * see docs/node-versions.md.
 */
import { createRequire } from 'node:module';
import { LivelyError, describeError } from '../../shared/errors.ts';
import { kNodeLines } from '../../shared/node-lines.ts';

/** The isolate engine package for each supported Node line (shared/node-lines.ts). */
export const kEngineByNodeMajor: Readonly<Record<number, string>> = {
  20: '@livelycouch/isolated-vm-5',
  22: '@livelycouch/isolated-vm-6',
  24: '@livelycouch/isolated-vm-6',
  26: '@livelycouch/isolated-vm-7',
};

/** The part of isolated-vm the isolate dispatcher uses (its own types differ per major). */
export interface IvmReference {
  apply(receiver: undefined, args: unknown[], options?: { timeout?: number; result?: { promise?: boolean; copy?: boolean } }): Promise<unknown>;
}
export interface IvmContext {
  global: {
    set(key: string, value: unknown): Promise<unknown>;
    get(key: string, options: { reference: true }): Promise<IvmReference>;
    delete(key: string): Promise<unknown>;
  };
}
export interface IvmIsolate {
  readonly isDisposed: boolean;
  dispose(): void;
  createContext(): Promise<IvmContext>;
  compileScript(code: string, options?: { filename?: string }): Promise<{ run(context: IvmContext, options?: { timeout?: number }): Promise<unknown> }>;
  getHeapStatisticsSync(): { used_heap_size: number; externally_allocated_size: number };
}
export interface IsolatedVm {
  Isolate: new (options: { memoryLimit: number }) => IvmIsolate;
  Reference: new (value: unknown) => unknown;
}

/** What status reports: which isolated-vm is loaded, or why none is. */
export interface IsolateEngineInfo {
  package?: string;
  /** the isolated-vm version loaded. */
  version?: string;
  node: string;
  error?: { code: 'LC_ISOLATE_UNAVAILABLE'; message: string };
}

export interface IsolateEngine { package: string; version: string; ivm: IsolatedVm }

const nodeMajor = (version: string): number => Number(version.split('.')[0]);

export function enginePackageFor(nodeVersion: string = process.versions.node): string | undefined {
  return kEngineByNodeMajor[nodeMajor(nodeVersion)];
}

/**
 * Loads `packageName` (enginePackageFor() gives the running Node's) and the isolated-vm it
 * depends on; throws LC_ISOLATE_UNAVAILABLE saying why when it cannot.
 */
export function loadIsolateEngine(packageName: string | undefined): IsolateEngine {
  const node = process.versions.node;
  const unavailable = (why: string) => new LivelyError('LC_ISOLATE_UNAVAILABLE', `isolate workers are unavailable on Node ${node}: ${why}`);
  if (packageName === undefined) {
    throw unavailable(`this Node line has no isolate engine (supported lines: ${Object.keys(kNodeLines).join(', ')})`);
  }
  const fromHere = createRequire(import.meta.url);
  let wrapperJson: string;
  try {
    wrapperJson = fromHere.resolve(`${packageName}/package.json`);
  } catch {
    throw unavailable(`${packageName} is not installed (npm installs it only on the Node line it serves: run npm install or npm ci with this Node)`);
  }
  const fromWrapper = createRequire(wrapperJson);
  let version = 'unknown';
  try {
    version = (fromWrapper('isolated-vm/package.json') as { version: string }).version;
    return { package: packageName, version, ivm: fromWrapper('isolated-vm') as IsolatedVm };
  } catch (e) {
    throw unavailable(`${packageName} (isolated-vm ${version}) did not load: ${describeError(e)}`);
  }
}
