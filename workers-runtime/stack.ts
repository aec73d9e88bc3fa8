/**
 * Stacks of errors in worker code as the user wrote it. A thread compiles each bundle under the
 * name `livelycouch-worker:///<key>`, so V8's frames point into the bundle; through the bundle's
 * source map (`<bundle file>.map`, written by the bundler) each such frame becomes
 * `<worker>/<attachment>:<line>:<column>`. The map is read the first time an error of that
 * revision needs it, so a worker that never fails never pays for it. A frame the map does not
 * cover (esbuild's own glue) is left as it was; frames of the thread runtime itself (which
 * called the handler or ran the timer) are dropped, since they say nothing about the worker.
 */
import { readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';

/** The scheme of the file name a bundle is compiled under in a thread. */
export const kFilePrefix = 'livelycouch-worker:///';

/** The file name the thread compiles a bundle under: what its frames name. */
export function bundleFileName(key: string): string {
  return kFilePrefix + encodeURIComponent(key);
}

/** This module's own file: the thread runtime, bundled into one file with it. */
const kRuntimeFile = import.meta.url;

/** The namespace esbuild gives attachments in a map's `sources` (src/workers/bundler.ts). */
const kSourcePrefix = 'lc-attachment:';

export class StackMapper {
  /** undefined: not read yet; null: none, or unreadable. */
  private map: SourceMap | null | undefined;

  constructor(private readonly frameFile: string, private readonly mapFile: string | undefined, private readonly workerId: string) {}

  /** `stack` with every frame in the bundle mapped to the attachment it came from. */
  apply(stack: string): string {
    if (!stack.includes(this.frameFile)) return stack;
    stack = stack.split('\n').filter((line) => !line.includes(kRuntimeFile)).join('\n');
    const map = this.load();
    if (!map) return stack;
    let out = '';
    let from = 0;
    for (let i = stack.indexOf(this.frameFile); i !== -1; i = stack.indexOf(this.frameFile, from)) {
      const m = /^:(\d+):(\d+)/.exec(stack.slice(i + this.frameFile.length, i + this.frameFile.length + 24));
      if (!m) { out += stack.slice(from, i + this.frameFile.length); from = i + this.frameFile.length; continue; }
      out += stack.slice(from, i);
      from = i + this.frameFile.length + m[0].length;
      out += this.frame(map, Number(m[1]), Number(m[2])) ?? stack.slice(i, from);
    }
    return out + stack.slice(from);
  }

  /** `<worker>/<attachment>:<line>:<column>` for a 1-based position in the bundle, or undefined. */
  private frame(map: SourceMap, line: number, column: number): string | undefined {
    const e = map.findEntry(line - 1, column - 1) as { originalSource?: string; originalLine?: number; originalColumn?: number };
    if (!e || typeof e.originalSource !== 'string' || e.originalLine === undefined || e.originalColumn === undefined) return undefined;
    const source = e.originalSource.slice(e.originalSource.indexOf(kSourcePrefix) === -1 ? 0 : e.originalSource.indexOf(kSourcePrefix) + kSourcePrefix.length);
    return `${this.workerId}/${source}:${e.originalLine + 1}:${e.originalColumn + 1}`;
  }

  private load(): SourceMap | null {
    if (this.map !== undefined) return this.map;
    try {
      this.map = this.mapFile ? new SourceMap(JSON.parse(readFileSync(this.mapFile, 'utf8'))) : null;
    } catch {
      this.map = null;
    }
    return this.map;
  }
}
