/** What each `livelycouch` command accepts, and the help text built from it. */
import { kOptionList, kOptions, optionProblem, parseOptionText, type OptionDef, type OptionKey } from '../config/index.ts';
import { UsageError, type FlagSpec } from './args.ts';

const help: FlagSpec = { name: 'help', aliases: ['h'], help: 'show this help' };

/** The flag of a configuration option, from its entry in the options table. */
function optionFlag(key: OptionKey, overrides: Partial<FlagSpec> = {}): FlagSpec {
  const o: OptionDef = kOptions[key];
  if (!o.flag) throw new Error(`option ${key} has no flag`);
  const takesValue = o.kind !== 'bool';
  const shown = o.shown ?? ('default' in o && o.kind !== 'bool' ? String(o.default) : undefined);
  const where = [o.env, shown !== undefined ? `default ${shown}` : undefined].filter(Boolean).join('; ');
  return {
    name: o.flag,
    ...(takesValue ? { value: o.kind === 'int' ? (o.unit === 'bytes' ? 'BYTES' : 'N') : o.kind === 'enum' ? 'LEVEL' : 'VALUE' } : {}),
    help: `${(o.kind === 'bool' && o.negated) || o.doc.replace(/`/g, '')}${where ? ` (${where})` : ''}`,
    config: (v, c) => {
      let value: unknown = o.kind === 'bool' ? !o.negated : undefined;
      if (o.kind !== 'bool') {
        try { value = parseOptionText(o, `--${o.flag}`, v); } catch (err) { throw new UsageError((err as Error).message); }
        const why = optionProblem(o, value);
        if (why) throw new UsageError(`--${o.flag} ${why}, got "${v}"`);
      }
      (c as Record<string, unknown>)[key] = value;
    },
    ...overrides,
  };
}

const dataDir = optionFlag('dataDir', { aliases: ['data'], value: 'DIR' });
const couch = optionFlag('couchUrl', { value: 'URL' });
const prefix = optionFlag('dbPrefix', { value: 'P' });
const writerRole = optionFlag('writerRole', { value: 'ROLE' });
const port = optionFlag('port');
const host = optionFlag('host', { value: 'H' });
const url: FlagSpec = { name: 'url', value: 'URL', help: 'a running runtime, e.g. http://127.0.0.1:5985 (LIVELY_URL)' };
const user: FlagSpec = { name: 'user', aliases: ['u'], value: 'NAME:PASSWORD', help: 'CouchDB credentials (LIVELY_USER, or LIVELY_USER=NAME with LIVELY_PASSWORD); default: COUCHDB_URL\'s, or the embedded store admin of the data directory' };
const json: FlagSpec = { name: 'json', help: 'machine-readable JSON output' };
const memory = optionFlag('embeddedMemory');
const common: ReadonlyArray<FlagSpec> = [port, host, dataDir, couch, prefix, writerRole, memory];
/** `start` and `dev`: the common options above, then every other option that has a flag. */
const serve: FlagSpec[] = [
  ...common,
  ...kOptionList.filter(([, o]) => o.flag && !common.some((f) => f.name === o.flag)).map(([key]) => optionFlag(key)),
];

export interface CommandSpec {
  name: string;
  args: string;
  summary: string;
  details?: string;
  flags: FlagSpec[];
  /** positional arguments: [required, allowed]. */
  positional: [number, number];
}

export const kCommands: CommandSpec[] = [
  {
    name: 'start', args: '', summary: 'run the runtime (its own embedded store unless COUCHDB_URL / --couch)',
    flags: [...serve, help],
    positional: [0, 0],
  },
  {
    name: 'init', args: '', summary: 'create the databases, their _security and validation documents',
    flags: [dataDir, couch, prefix, writerRole, memory, url, user, help], positional: [0, 0],
  },
  {
    name: 'deploy', args: '<dir> | --from URL', summary: 'push an app folder: events/*.json and workers/<name>/ (doc.json + files)',
    details: 'Only documents whose content changed are written. The whole folder is checked first (JSON, the\n'
      + 'validation rules, every node and isolate worker bundled): a failure names the file, writing nothing.\n'
      + 'With --from, the events and workers of another CouchDB are replicated here (_replicate) instead.\n'
      + 'Uses the runtime running on the data directory, COUCHDB_URL, or --url through a runtime.',
    flags: [
      dataDir, couch, prefix, writerRole, url, user, json,
      { name: 'from', value: 'URL', help: 'replicate the app from this CouchDB (with credentials; its runtime\'s store)' },
      { name: 'from-prefix', value: 'P', help: 'database prefix of the app at --from (default lively_)' },
      help,
    ],
    positional: [0, 1],
  },
  {
    name: 'dev', args: '<dir>', summary: 'deploy, then watch the folder and push every change',
    details: 'Starts a runtime unless one runs on the data directory (or --url / COUCHDB_URL is given).\n'
      + 'Edits, new and deleted files are pushed within a second; a file deleted from the folder removes\n'
      + 'its document. A broken file is reported and the last good version keeps running.',
    flags: [...serve, url, user, json, help], positional: [1, 1],
  },
  {
    name: 'trigger', args: '<path>', summary: 'fire /_events/<path> on the running runtime',
    details: 'Prints the reply. With --wait, exits 1 when a worker did not end ok.\n'
      + 'Sends credentials only when --user / LIVELY_USER is given (events with "auth").',
    flags: [
      { name: 'body', aliases: ['d'], value: 'JSON', help: 'JSON request body (makes the method POST unless --method)' },
      { name: 'method', aliases: ['X'], value: 'M', help: 'HTTP method (default GET, POST with --data)' },
      { name: 'wait', aliases: ['w'], help: 'reply when the workers are done, with their results' },
      url, { ...user, help: 'credentials for events with "auth" (LIVELY_USER, or LIVELY_USER=NAME with LIVELY_PASSWORD); none by default' },
      dataDir, port, host, json, help,
    ],
    positional: [1, 1],
  },
  {
    name: 'new', args: '<dir>', summary: 'a new app folder: an HTTP endpoint in TypeScript, a changes trigger, a schedule, a python worker',
    details: 'The folder must be new or empty. It gets the worker types (types/) and the documents\' JSON Schemas\n'
      + '(schemas/), which each document names in "$schema" so that editors complete and check it.',
    flags: [help], positional: [1, 1],
  },
  {
    name: 'secret', args: '<set NAME | list | rm NAME>', summary: 'secrets workers name in "secrets": set (value from stdin or a prompt), list (names only), rm',
    flags: [url, user, dataDir, port, host, json, help], positional: [1, 2],
  },
  {
    name: 'status', args: '', summary: "the running runtime's status",
    flags: [url, user, dataDir, port, host, json, help], positional: [0, 0],
  },
  {
    name: 'logs', args: '', summary: 'recent activations, one line each, oldest first (-f follows)',
    flags: [
      { name: 'follow', aliases: ['f'], help: 'keep printing new activations as they happen' },
      { name: 'event', aliases: ['e'], value: 'ID', help: 'only activations of this event' },
      { name: 'worker', value: 'ID', help: 'only activations that ran this worker' },
      { name: 'status', value: 'S', help: 'only activations with a worker in this status (ok, error, timeout)' },
      { name: 'since', value: 'TIME', help: 'only activations started since (ISO time, ms, or 10m / 2h / 1d ago)' },
      { name: 'limit', aliases: ['n'], value: 'N', help: 'how many (default 20)' },
      url, user, dataDir, port, host, json, help,
    ],
    positional: [0, 0],
  },
];

export function findCommand(name: string): CommandSpec | undefined {
  return kCommands.find((c) => c.name === name);
}

export function commandHelp(cmd: CommandSpec): string {
  const rows = cmd.flags.map((f) => {
    const names = [f.name, ...(f.aliases ?? [])].map((n) => (n.length === 1 ? `-${n}` : `--${n}`)).join(', ');
    return [`${names}${f.value ? ` ${f.value}` : ''}`, f.help] as const;
  });
  const width = Math.max(...rows.map((r) => r[0].length));
  return [
    `usage: livelycouch ${cmd.name}${cmd.args ? ` ${cmd.args}` : ''} [options]`,
    '',
    cmd.summary,
    ...(cmd.details ? ['', cmd.details] : []),
    '',
    'options:',
    ...rows.map(([n, h]) => `  ${n.padEnd(width)}  ${h}`),
  ].join('\n') + '\n';
}

export function mainHelp(): string {
  const width = Math.max(...kCommands.map((c) => `${c.name} ${c.args}`.length));
  return [
    'usage: livelycouch <command> [options]',
    '',
    'commands:',
    ...kCommands.map((c) => `  ${`${c.name} ${c.args}`.padEnd(width)}  ${c.summary}`),
    '',
    'livelycouch <command> --help shows the options of one command; livelycouch --version the version.',
  ].join('\n') + '\n';
}
