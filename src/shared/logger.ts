/**
 * The runtime's own log: an injected logger, one line per event. In production (stderr not a
 * terminal) each line is a JSON object `{"t","level","msg",…fields}`; in a terminal it is a
 * readable line with the fields as key=value. `LIVELY_LOG_FORMAT=json|pretty` overrides the
 * choice. Specs get a silent logger, or one writing to a function of theirs.
 *
 * Secrets are redacted here, centrally, whatever a caller passes: the password in any URL's
 * userinfo, Basic/Bearer credentials and AuthSession cookies in any text, `password=`/`token=`
 * query parameters and `"password": "…"` inside JSON text, and the whole value of every field whose name says it is a secret
 * (password, secret, token, authorization, cookie, api key) at any depth.
 */
import { LivelyError } from './errors.ts';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const kLevelOrder = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;
export type Level = keyof typeof kLevelOrder;
export type LogFormat = 'json' | 'pretty';

export interface LoggerOptions {
  level?: Level;
  /** default: `LIVELY_LOG_FORMAT`, else pretty when stderr is a terminal, else json. */
  format?: LogFormat;
  /** where lines go (without a trailing newline); default stderr. */
  write?: (line: string) => void;
  /** ANSI colours in the pretty format; default: when writing to a terminal and NO_COLOR is unset. */
  color?: boolean;
}

/** `LIVELY_LOG_FORMAT`, or the terminal test; a wrong value is a configuration error. */
export function logFormatFromEnv(env: NodeJS.ProcessEnv = process.env, isTTY = process.stderr.isTTY === true): LogFormat {
  const v = env.LIVELY_LOG_FORMAT;
  if (v === undefined || v === '') return isTTY ? 'pretty' : 'json';
  if (v === 'json' || v === 'pretty') return v;
  throw new LivelyError('LC_CONFIG', `LIVELY_LOG_FORMAT must be "json" or "pretty", got ${JSON.stringify(v)}`);
}

// ---- redaction ----

export const kRedacted = '[redacted]';
const kSecretField = /password|passwd|secret|token|authorization|cookie|api[-_]?key/i;
const kUrlUserinfo = /\b([a-z][a-z0-9+.-]*:\/\/[^\s/?#@:]*):[^\s/?#]*@/gi;
const kAuthScheme = /\b(Basic|Bearer)\s+[A-Za-z0-9+/=._~-]+/g;
const kAuthSession = /\bAuthSession=[^;\s,"']+/g;
const kSecretParam = /([?&;](?:password|passwd|secret|token|api[-_]?key)=)[^&\s#"']*/gi;
const kSecretJson = /("(?:password|passwd|secret|token)"\s*:\s*")(?:[^"\\]|\\.)*"/gi;
/** Text none of the patterns can match skips them all: one scan instead of five. */
const kMaybeSecret = /:\/\/|Basic|Bearer|AuthSession|pass|secret|token|api[-_]?key/i;
const kMaxDepth = 8;

/**
 * The values of the runtime's secrets (src/core/secrets.ts): replaced wherever they occur,
 * whatever the text around them. Values shorter than 4 characters are not kept (they would
 * blank out ordinary words); a changed or removed secret's old value stays redacted.
 */
const secretValues = new Set<string>();
const kMinSecretValue = 4;

export function rememberSecretValue(value: string): void {
  if (value.length >= kMinSecretValue) secretValues.add(value);
}

/** Whether any secret value is known: callers skip walking results when none is. */
export function hasSecretValues(): boolean {
  return secretValues.size > 0;
}

function redactSecretValues(s: string): string {
  if (s.length < kMinSecretValue) return s;
  for (const v of secretValues) if (s.includes(v)) s = s.split(v).join(kRedacted);
  return s;
}

/** The text with every credential the patterns above recognise, and every secret value, replaced. */
export function redactText(s: string): string {
  if (secretValues.size > 0) s = redactSecretValues(s);
  if (s.length < 6 || !kMaybeSecret.test(s)) return s;
  return s.replace(kUrlUserinfo, `$1:${kRedacted}@`)
    .replace(kAuthScheme, `$1 ${kRedacted}`)
    .replace(kAuthSession, `AuthSession=${kRedacted}`)
    .replace(kSecretParam, `$1${kRedacted}`)
    .replace(kSecretJson, `$1${kRedacted}"`);
}

/** A JSON-safe copy of `v` with secrets redacted; never throws, never loops. */
export function redact(v: unknown, depth = 0, seen: Set<object> = new Set()): unknown {
  switch (typeof v) {
    case 'string': return redactText(v);
    case 'number': return Number.isFinite(v) ? v : String(v);
    case 'boolean': return v;
    case 'bigint': return v.toString();
    case 'undefined': return undefined;
    case 'function': case 'symbol': return String(v);
  }
  if (v === null) return null;
  const o = v as object;
  if (seen.has(o)) return '[circular]';
  if (depth >= kMaxDepth) return '[deep]';
  seen.add(o);
  try {
    if (o instanceof Error) {
      const e = o as Error & { code?: unknown };
      const out: Record<string, unknown> = { name: e.name, message: redactText(e.message) };
      if (e.code !== undefined) out.code = redact(e.code, depth + 1, seen);
      if (e.stack) out.stack = redactText(e.stack);
      return out;
    }
    if (Array.isArray(o)) return o.map((x) => redact(x, depth + 1, seen));
    if (Buffer.isBuffer(o)) return `[${o.length} bytes]`;
    if (o instanceof URL) return redactText(o.toString());
    if (o instanceof Date) return o.toISOString();
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(o)) {
      const value = (o as Record<string, unknown>)[key];
      out[key] = kSecretField.test(key) && value !== undefined && value !== null && value !== '' ? kRedacted : redact(value, depth + 1, seen);
    }
    return out;
  } catch {
    return '[unreadable]';
  } finally {
    seen.delete(o);
  }
}

// ---- formats ----

type Emit = Exclude<Level, 'silent'>;

function jsonLine(t: Date, level: Emit, msg: string, fields: Record<string, unknown> | undefined): string {
  const line: Record<string, unknown> = { t: t.toISOString(), level, msg: redactText(msg) };
  if (fields) {
    const safe = redact(fields) as Record<string, unknown>;
    for (const k of Object.keys(safe)) if (!(k in line)) line[k] = safe[k];
  }
  return JSON.stringify(line);
}

const kColour: Record<Emit, string> = { debug: '\x1b[90m', info: '\x1b[36m', warn: '\x1b[33m', error: '\x1b[31m' };
const kDim = '\x1b[2m';
const kReset = '\x1b[0m';

function prettyValue(v: unknown): string {
  if (typeof v === 'string') return v !== '' && /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}

/** `12:00:01.234 WARN  msg key=value …`, multi-line fields (stacks) on indented lines below. */
function prettyLine(t: Date, level: Emit, msg: string, fields: Record<string, unknown> | undefined, color: boolean): string {
  const time = t.toISOString().slice(11, 23);
  const lv = level.toUpperCase().padEnd(5);
  let line = color ? `${kDim}${time}${kReset} ${kColour[level]}${lv}${kReset} ${redactText(msg)}` : `${time} ${lv} ${redactText(msg)}`;
  const below: string[] = [];
  if (fields) {
    const safe = redact(fields) as Record<string, unknown>;
    for (const k of Object.keys(safe)) {
      const v = safe[k];
      if (v === undefined) continue;
      if (typeof v === 'string' && v.includes('\n')) { below.push(...v.split('\n').map((l) => `    ${l}`)); continue; }
      line += color ? ` ${kDim}${k}=${kReset}${prettyValue(v)}` : ` ${k}=${prettyValue(v)}`;
    }
  }
  return below.length ? `${line}\n${below.join('\n')}` : line;
}

// ---- the logger ----

export function createLogger(levelOrOptions: Level | LoggerOptions = 'info', write?: (line: string) => void): Logger {
  const o: LoggerOptions = typeof levelOrOptions === 'string' ? { level: levelOrOptions, write } : levelOrOptions;
  const min = kLevelOrder[o.level ?? 'info'];
  if (min === kLevelOrder.silent) {
    const nothing = (): void => undefined;
    return { debug: nothing, info: nothing, warn: nothing, error: nothing };
  }
  const out = o.write ?? ((l: string) => { process.stderr.write(l + '\n'); });
  // A caller's own sink gets JSON unless it asks otherwise: it is usually a spec or a collector.
  const format = o.format ?? (o.write ? 'json' : logFormatFromEnv());
  const color = o.color ?? (!o.write && process.stderr.isTTY === true && !process.env.NO_COLOR);
  const at = (lv: Emit) => (msg: string, fields?: Record<string, unknown>): void => {
    if (kLevelOrder[lv] < min) return;
    let line: string;
    try {
      const t = new Date();
      line = format === 'json' ? jsonLine(t, lv, msg, fields) : prettyLine(t, lv, msg, fields, color);
    } catch {
      line = JSON.stringify({ t: new Date().toISOString(), level: lv, msg: redactText(String(msg)), note: 'fields could not be written' });
    }
    try { out(line); } catch { /* a broken log sink must not break the caller */ }
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export const silentLogger: Logger = createLogger('silent');

/**
 * A warning that can repeat thousands of times a second (a worker emitting events into a full
 * queue) logged once per key and window: the first at once, the rest of the window counted and
 * logged as one line when it ends, with the last of them as an example.
 */
export class ThrottledWarning {
  private readonly windows = new Map<string, { more: number; last?: Record<string, unknown>; timer: NodeJS.Timeout }>();

  constructor(private readonly logger: Logger, private readonly msg: string, private readonly windowMs = 10_000) {}

  warn(key: string, fields: Record<string, unknown>): void {
    const w = this.windows.get(key);
    if (w) { w.more++; w.last = fields; return; }
    this.logger.warn(this.msg, fields);
    const timer = setTimeout(() => this.end(key), this.windowMs);
    timer.unref();
    this.windows.set(key, { more: 0, timer });
  }

  /** Logs what is counted now, and stops the windows' timers. */
  close(): void {
    for (const key of [...this.windows.keys()]) this.end(key);
  }

  /** Ends a key's window: one line counting what it held back, if anything. */
  private end(key: string): void {
    const w = this.windows.get(key)!;
    clearTimeout(w.timer);
    this.windows.delete(key);
    if (w.more > 0) this.logger.warn(`${this.msg}: ${w.more} more in the last ${this.windowMs / 1000} s`, { ...w.last, more: w.more });
  }
}
