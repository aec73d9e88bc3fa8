/**
 * Stacks of errors in worker code as the user wrote it. A bundle is compiled under a name of its
 * own (a thread: `livelycouch-worker:///<key>`; an isolate: `livelycouch-isolate:///<key>`), so
 * V8's frames point into the bundle; through the bundle's source map (written by the bundler)
 * each such frame becomes `<worker>/<attachment>:<line>:<column>`. The map is read the first
 * time an error of that revision needs it, so a worker that never fails never pays for it. A
 * frame the map does not cover (esbuild's own glue) is left as it was; frames of the code that
 * called the worker (the thread runtime, an isolate's prelude) are dropped, since they say
 * nothing about the worker.
 */
import { SourceMap } from 'node:module';

/** The scheme of the file name a bundle is compiled under in a thread. */
export const kFilePrefix = 'livelycouch-worker:///';

/** The file name a thread (or an isolate) compiles a bundle under: what its frames name. */
export function bundleFileName(key: string, where: 'thread' | 'isolate' = 'thread'): string {
  return (where === 'thread' ? kFilePrefix : 'livelycouch-isolate:///') + encodeURIComponent(key);
}

/** Stacks in activation records are cut to this many characters. */
const kMaxStack = 4096;

/** This module's own file: in a thread, the thread runtime, bundled into one file with it. */
export const kRuntimeFile = import.meta.url;

/** The namespace esbuild gives attachments in a map's `sources` (src/workers/bundler.ts). */
const kSourcePrefix = 'lc-attachment:';

export interface StackMapperOptions {
  /** the file name the bundle was compiled under. */
  frameFile: string;
  /** the bundle's source map (JSON), read when first needed; undefined or bad: frames stay. */
  loadMap: () => string | undefined;
  workerId: string;
  /** lines compiled before the bundle's first line (an isolate's prelude). */
  lineOffset?: number;
  /** the bundle's length in lines: frames of the same file outside it are the caller's, dropped. */
  bundleLines?: number;
  /** frames naming this file are the caller's, dropped. */
  callerFile?: string;
}

export class StackMapper {
  /** undefined: not read yet; null: none, or unreadable. */
  private map: SourceMap | null | undefined;

  constructor(private readonly o: StackMapperOptions) {}

  /** The stack of a thrown Error, mapped and cut to 4 KiB, for the activation record; nothing for other values. */
  stackOf(err: unknown): string | undefined {
    if (!(err instanceof Error) || typeof err.stack !== 'string') return undefined;
    const stack = this.apply(err.stack);
    return stack.length > kMaxStack ? stack.slice(0, kMaxStack) : stack;
  }

  /** `stack` with every frame in the bundle mapped to the attachment it came from. */
  apply(stack: string): string {
    const { frameFile, callerFile } = this.o;
    if (!stack.includes(frameFile)) return stack;
    const out: string[] = [];
    for (const line of stack.split('\n')) {
      if (callerFile !== undefined && line.includes(callerFile)) continue;
      const i = line.indexOf(frameFile);
      if (i === -1) { out.push(line); continue; }
      const m = /^:(\d+):(\d+)/.exec(line.slice(i + frameFile.length));
      if (!m) { out.push(line); continue; }
      const bundleLine = Number(m[1]) - (this.o.lineOffset ?? 0);
      if (bundleLine < 1 || bundleLine > (this.o.bundleLines ?? Infinity)) continue;
      const mapped = this.frame(bundleLine, Number(m[2]));
      const at = i + frameFile.length + m[0].length;
      out.push(mapped === undefined ? line : line.slice(0, i) + mapped + line.slice(at));
    }
    return out.join('\n');
  }

  /** `<worker>/<attachment>:<line>:<column>` for a 1-based position in the bundle, or undefined. */
  private frame(line: number, column: number): string | undefined {
    const map = this.load();
    if (!map) return undefined;
    const e = map.findEntry(line - 1, column - 1) as { generatedLine?: number; originalSource?: string; originalLine?: number; originalColumn?: number };
    // findEntry answers with the nearest mapping before the position, even on an earlier line:
    // a line with no mapping of its own (esbuild's glue) is not the user's code.
    if (!e || e.generatedLine !== line - 1 || typeof e.originalSource !== 'string' || e.originalLine === undefined || e.originalColumn === undefined) return undefined;
    const at = e.originalSource.indexOf(kSourcePrefix);
    const source = at === -1 ? e.originalSource : e.originalSource.slice(at + kSourcePrefix.length);
    return `${this.o.workerId}/${source}:${e.originalLine + 1}:${e.originalColumn + 1}`;
  }

  private load(): SourceMap | null {
    if (this.map !== undefined) return this.map;
    try {
      const text = this.o.loadMap();
      this.map = text ? new SourceMap(JSON.parse(text)) : null;
    } catch {
      this.map = null;
    }
    return this.map;
  }
}
