/**
 * Worker output protocol, shared by thread, process and isolate workers:
 * each stdout line that is a JSON object with one of the command keys is a command,
 * anything else is a log line.
 */
import type { EmitCommand, LogLevel } from './message.ts';
import { kTooDeep, nestedDeeperThan } from './json.ts';

export type OutputCommand = (
  | { kind: 'emit'; emit: EmitCommand }
  | { kind: 'result'; value: unknown }
  | { kind: 'done' }
  /** `{"acknowledges": true}`: this process ends every message with result/done, so silence never does. */
  | { kind: 'acknowledges' }
  /** `{"pipeline": N}`: this process acknowledges, and may be sent up to N messages before it answers them. */
  | { kind: 'pipeline'; depth: number }
  | { kind: 'log'; level: LogLevel; msg: string }
) & {
  /** `"id"` on a command line: the message it is for (process workers that take several messages at once). */
  id?: number;
};

/** The most messages a process may hold at once, whatever it declares. */
export const kMaxPipeline = 256;

const kLevels = new Set<LogLevel>(['debug', 'info', 'warn', 'error']);

export function parseOutputLine(line: string, stream: 'stdout' | 'stderr'): OutputCommand {
  if (stream === 'stdout' && line.length > 1 && line.charCodeAt(0) === 123 /* { */) {
    // What it would carry (a result, an event's parameters) could not be sent on or stored.
    if (nestedDeeperThan(line)) return { kind: 'log', level: 'error', msg: `not taken as a command, being ${kTooDeep}: ${line}` };
    let obj: unknown;
    try { obj = JSON.parse(line); } catch { obj = undefined; }
    if (obj && typeof obj === 'object' && !Array.isArray(obj)) {
      const o = obj as Record<string, unknown>;
      const cmd = command(o);
      if (cmd) {
        if (typeof o.id === 'number' && Number.isSafeInteger(o.id)) cmd.id = o.id;
        return cmd;
      }
    }
  }
  return { kind: 'log', level: stream === 'stderr' ? 'error' : 'info', msg: line };
}

function command(o: Record<string, unknown>): OutputCommand | undefined {
  if (typeof o.emit === 'string' && o.emit.length > 0) {
    const p = o.parameters;
    return { kind: 'emit', emit: { emit: o.emit, parameters: p && typeof p === 'object' && !Array.isArray(p) ? p as Record<string, unknown> : {} } };
  }
  if ('result' in o) return { kind: 'result', value: o.result };
  if (o.done === true) return { kind: 'done' };
  if (o.acknowledges === true) return { kind: 'acknowledges' };
  if (typeof o.pipeline === 'number' && Number.isInteger(o.pipeline) && o.pipeline >= 1) return { kind: 'pipeline', depth: Math.min(o.pipeline, kMaxPipeline) };
  if (typeof o.log === 'string') {
    const level = typeof o.level === 'string' && kLevels.has(o.level as LogLevel) ? o.level as LogLevel : 'info';
    return { kind: 'log', level, msg: o.log };
  }
  return undefined;
}

/**
 * The first `max` UTF-16 units of `text`, one fewer when the last would be the first half of a
 * surrogate pair: a cut never leaves half a character, which JSON would carry as a lone escape.
 */
export function headOf(text: string, max: number): string {
  if (text.length <= max) return text;
  const c = text.charCodeAt(max - 1);
  return text.slice(0, c >= 0xd800 && c <= 0xdbff ? max - 1 : max);
}

/**
 * Splits a byte stream into lines, cutting any line longer than `maxLine` chars, or, for a line
 * that starts with "{" (a command: a result may carry a large response body), `maxCommand`.
 */
export class LineSplitter {
  private buf = '';
  private dropping = false;
  /** the current line's limit. */
  private max: number;
  constructor(private readonly onLine: (line: string, truncated: boolean) => void, private readonly maxLine = 64 * 1024,
    private readonly maxCommand = maxLine) {
    this.max = maxLine;
  }

  push(chunk: string): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf('\n', start);
      if (nl === -1) { this.append(chunk.slice(start)); return; }
      this.append(chunk.slice(start, nl));
      this.flushLine();
      start = nl + 1;
    }
  }

  end(): void { if (this.buf.length > 0 || this.dropping) this.flushLine(); }

  private append(s: string): void {
    if (this.dropping) return;
    // Decided on a line's first chars: reading the start of a long rope would flatten it each time.
    if (this.buf.length === 0 && s.length > 0) this.max = s.charCodeAt(0) === 123 /* { */ ? this.maxCommand : this.maxLine;
    this.buf += s;
    const max = this.max;
    if (this.buf.length > max) {
      this.onLine(headOf(this.buf, max), true);
      this.buf = '';
      this.dropping = true;
    }
  }

  private flushLine(): void {
    if (this.dropping) { this.dropping = false; this.buf = ''; return; }
    let line = this.buf;
    this.buf = '';
    if (line.endsWith('\r')) line = line.slice(0, -1);
    this.onLine(line, false);
  }
}
