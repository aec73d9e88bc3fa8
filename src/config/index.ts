/**
 * Configuration: the options table (./options.ts) turned into defaults, the reading of the
 * environment and a validated, frozen result. Sources: defaults < environment < CLI flags.
 */
import path from 'node:path';
import { LivelyError } from '../shared/errors.ts';
import { kDefaultInterpreters, kOptionList, type Config, type OptionDef, type OptionKey } from './options.ts';

export { kDefaultInterpreters, kOptions, kOptionList, kDatabaseNamePattern } from './options.ts';
export type { Config, OptionDef, OptionKey } from './options.ts';

export const kDefaultConfig: Readonly<Config> = Object.freeze(Object.fromEntries(
  kOptionList.map(([key, o]) => [key, 'default' in o ? o.default : undefined]),
) as Config);

export type ConfigInput = Partial<Config>;

const fail = (msg: string): never => { throw new LivelyError('LC_CONFIG', msg); };

/** Why `v` is not a value of option `o`, or undefined when it is. */
export function optionProblem(o: OptionDef, v: unknown): string | undefined {
  switch (o.kind) {
    case 'int': {
      const ok = typeof v === 'number' && Number.isInteger(v) && v >= o.min && (o.max === undefined || v <= o.max);
      if (ok) return undefined;
      const range = o.max !== undefined ? `an integer from ${o.min} to ${o.max}` : o.min === 0 ? 'a non-negative integer' : o.min === 1 ? 'a positive integer' : `an integer of at least ${o.min}`;
      return `must be ${range}${o.unit ? ` (${o.unit})` : ''}`;
    }
    case 'string':
    case 'optional-string':
      if (o.kind === 'optional-string' && v === undefined) return undefined;
      if (o.kind === 'string' && o.emptyOk && v === '') return undefined;
      if (typeof v !== 'string' || v.length === 0) return o.rule ? `must be ${o.rule}` : 'must be a non-empty string';
      return o.pattern && !o.pattern.test(v) ? `must be ${o.rule}` : undefined;
    case 'bool':
      return typeof v === 'boolean' ? undefined : 'must be true or false';
    case 'enum':
      return o.values.includes(v as string) ? undefined : `must be ${o.values.slice(0, -1).join(', ')} or ${o.values.at(-1)}`;
    case 'interpreters':
      return v !== null && typeof v === 'object' && !Array.isArray(v) ? undefined : 'must be an object of type → command';
  }
}

export function makeConfig(input: ConfigInput = {}): Readonly<Config> {
  const c = { ...kDefaultConfig, ...stripUndefined(input) } as Config;
  for (const [key, o] of kOptionList) {
    const why = optionProblem(o, c[key]);
    if (why) fail(`options.${key} ${why}`);
  }
  c.interpreters = { ...kDefaultInterpreters, ...(input.interpreters ?? {}) };
  for (const [type, cmd] of Object.entries(c.interpreters)) {
    if (!(Array.isArray(cmd) && cmd.length > 0 && cmd.every((s) => typeof s === 'string' && s.length > 0))) {
      fail(`options.interpreters.${type} must be a non-empty list of strings`);
    }
  }
  c.dataDir = path.resolve(c.dataDir);
  return Object.freeze(c);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

const kTrue = ['1', 'true', 'on', 'yes'];
const kFalse = ['0', 'false', 'off', 'no'];

/** One option's value from its text (an environment variable's or a flag's); `name` is how the
 * user wrote it, for the error. Checks of range and form are makeConfig's. */
export function parseOptionText(o: OptionDef, name: string, text: string): unknown {
  switch (o.kind) {
    case 'int': {
      const n = Number(text);
      if (text.trim() === '' || !Number.isInteger(n)) fail(`${name} must be an integer, got "${text}"`);
      return n;
    }
    case 'bool': {
      // a word that is neither is refused rather than read as on: LIVELY_STORE_SYNC=off must not sync
      const word = text.trim().toLowerCase();
      if (kTrue.includes(word)) return true;
      if (kFalse.includes(word)) return false;
      return fail(`${name} must be 1, true, on or yes, or 0, false, off or no, got "${text}"`);
    }
    case 'interpreters':
      try { return JSON.parse(text); } catch {
        return fail(`${name} must be JSON like {"python":["python3","-u"]}`);
      }
    default: return text;
  }
}

/** The options' environment variables (COUCHDB_URL and LIVELY_*); empty ones count as unset. */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): ConfigInput {
  const out: Record<string, unknown> = {};
  for (const [key, o] of kOptionList) {
    const text = o.env ? env[o.env] : undefined;
    if (text !== undefined && (text !== '' || (o.kind === 'string' && o.emptyOk))) out[key] = parseOptionText(o, o.env!, text);
  }
  return out as ConfigInput;
}

/** Redacts credentials for logging. */
export function describeConfig(c: Readonly<Config>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...c };
  if (c.couchUrl) {
    const u = new URL(c.couchUrl);
    if (u.password) u.password = '***';
    out.couchUrl = u.toString();
  }
  delete out.interpreters;
  return out;
}
