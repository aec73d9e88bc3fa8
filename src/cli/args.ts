/**
 * argv → command, positional arguments, flags and config overrides, checked against the
 * command's own table of options (commands.ts): an option the command does not know is an
 * error that names it, never silently ignored.
 */
import type { ConfigInput } from '../config/index.ts';
import { LivelyError } from '../shared/errors.ts';

/** A mistake in how the command was called: reported with exit code 2. */
export class UsageError extends LivelyError {
  constructor(message: string) {
    super('LC_CONFIG', message);
    this.name = 'UsageError';
  }
}

export interface FlagSpec {
  name: string;
  /** other spellings: single letters are written `-f`. */
  aliases?: string[];
  /** absent: a switch that takes no value. */
  value?: string;
  help: string;
  /** options that are configuration (port, data dir, …) land in `config`. */
  config?: (v: string, c: ConfigInput) => void;
}

export interface ParsedArgs {
  command: string;
  positional: string[];
  config: ConfigInput;
  /** by the flag's canonical name. */
  flags: Record<string, string | true>;
}

export function toInt(name: string, v: string, min = Number.MIN_SAFE_INTEGER): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer${min > 0 ? ` of at least ${min}` : ''}, got "${v}"`);
  return n;
}

const dash = (name: string) => (name.length === 1 ? `-${name}` : `--${name}`);

/** The command word: the first argument that is not an option. */
export function commandOf(argv: readonly string[]): string {
  return argv.find((a) => !a.startsWith('-')) ?? '';
}

export function parseArgs(argv: readonly string[], command: string, table: readonly FlagSpec[]): ParsedArgs {
  const byName = new Map<string, FlagSpec>();
  for (const f of table) for (const n of [f.name, ...(f.aliases ?? [])]) byName.set(n, f);
  const out: ParsedArgs = { command, positional: [], config: {}, flags: {} };
  let commandSeen = false;
  let onlyPositional = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (onlyPositional || !a.startsWith('-') || a === '-') {
      if (!commandSeen && a === command) commandSeen = true;
      else out.positional.push(a);
      continue;
    }
    if (a === '--') { onlyPositional = true; continue; }
    const long = a.startsWith('--');
    const eq = a.indexOf('=');
    const name = a.slice(long ? 2 : 1, eq === -1 ? undefined : eq);
    const spec = byName.get(name);
    if (!spec) throw new UsageError(`unknown option ${dash(name)}`);
    let value: string | true = true;
    if (spec.value === undefined) {
      if (eq !== -1) throw new UsageError(`${dash(name)} takes no value`);
    } else if (eq !== -1) {
      value = a.slice(eq + 1);
    } else {
      const next = argv[i + 1];
      if (next === undefined) throw new UsageError(`${dash(name)} needs a value (${spec.value})`);
      value = next;
      i++;
    }
    if (spec.config) spec.config(value === true ? '' : value, out.config);
    else out.flags[spec.name] = value;
  }
  return out;
}
