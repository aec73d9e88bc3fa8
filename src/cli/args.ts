/** argv → command, positional arguments and config overrides. */
import { LivelyError } from '../shared/errors.ts';
import type { ConfigInput } from '../config/index.ts';

export interface ParsedArgs {
  command: string;
  positional: string[];
  config: ConfigInput;
  flags: Record<string, string | boolean>;
}

const CONFIG_FLAGS: Record<string, (v: string, c: ConfigInput) => void> = {
  port: (v, c) => { c.port = toInt('--port', v); },
  host: (v, c) => { c.host = v; },
  data: (v, c) => { c.dataDir = v; },
  couch: (v, c) => { c.couchUrl = v; },
  prefix: (v, c) => { c.dbPrefix = v; },
  threads: (v, c) => { c.threads = toInt('--threads', v); },
  'writer-role': (v, c) => { c.writerRole = v; },
  'body-limit': (v, c) => { c.bodyLimit = toInt('--body-limit', v); },
  'log-level': (v, c) => { c.logLevel = v as ConfigInput['logLevel']; },
};
const BOOLEAN_FLAGS = new Set(['no-sample', 'follow', 'f', 'help', 'h', 'wait', 'memory']);

function toInt(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new LivelyError('LC_CONFIG', `${name} must be an integer, got "${v}"`);
  return n;
}

export function parseArgs(argv: readonly string[]): ParsedArgs {
  const out: ParsedArgs = { command: '', positional: [], config: {}, flags: {} };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('-')) {
      const eq = a.indexOf('=');
      const name = a.replace(/^--?/, '').slice(0, eq === -1 ? undefined : eq - (a.startsWith('--') ? 2 : 1));
      let value: string | boolean;
      if (BOOLEAN_FLAGS.has(name)) value = true;
      else if (eq !== -1) value = a.slice(eq + 1);
      else {
        const next = argv[i + 1];
        if (next === undefined) throw new LivelyError('LC_CONFIG', `--${name} needs a value`);
        value = next;
        i++;
      }
      const apply = CONFIG_FLAGS[name];
      if (apply) apply(String(value), out.config);
      else if (name === 'no-sample') out.config.sample = false;
      else if (name === 'memory') out.config.embeddedMemory = true;
      else out.flags[name] = value;
    } else if (!out.command) out.command = a;
    else out.positional.push(a);
  }
  return out;
}
