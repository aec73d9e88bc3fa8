/** What each `livelycouch` command accepts, and the help text built from it. */
import type { ConfigInput } from '../config/index.ts';
import { toInt, type FlagSpec } from './args.ts';

const help: FlagSpec = { name: 'help', aliases: ['h'], help: 'show this help' };
const dataDir: FlagSpec = { name: 'data-dir', aliases: ['data'], value: 'DIR', help: 'data directory (LIVELY_DATA; default .livelycouch/data)', config: (v, c) => { c.dataDir = v; } };
// `trigger --data` is the request body, so there the data directory is only --data-dir.
const dataDirOnly: FlagSpec = { ...dataDir, aliases: [] };
const couch: FlagSpec = { name: 'couch', value: 'URL', help: 'Apache CouchDB URL with admin credentials (COUCHDB_URL); default: the embedded store', config: (v, c) => { c.couchUrl = v; } };
const prefix: FlagSpec = { name: 'prefix', value: 'P', help: 'database name prefix (LIVELY_DB_PREFIX; default lively_)', config: (v, c) => { c.dbPrefix = v; } };
const writerRole: FlagSpec = { name: 'writer-role', value: 'ROLE', help: 'role besides admins allowed to write events and workers', config: (v, c) => { c.writerRole = v; } };
const port: FlagSpec = { name: 'port', value: 'N', help: 'port (LIVELY_PORT; default 5985)', config: (v, c) => { c.port = toInt('port', v, 0); } };
const host: FlagSpec = { name: 'host', value: 'H', help: 'interface (LIVELY_HOST; default 127.0.0.1)', config: (v, c) => { c.host = v; } };
const url: FlagSpec = { name: 'url', value: 'URL', help: 'a running runtime, e.g. http://127.0.0.1:5985 (LIVELY_URL)' };
const user: FlagSpec = { name: 'user', aliases: ['u'], value: 'NAME:PASSWORD', help: 'CouchDB credentials (LIVELY_USER, or LIVELY_USER=NAME with LIVELY_PASSWORD); default: COUCHDB_URL\'s, or the embedded store admin of the data directory' };
const json: FlagSpec = { name: 'json', help: 'machine-readable JSON output' };
const memory: FlagSpec = { name: 'memory', help: 'embedded store keeps data in memory only', config: (_v, c: ConfigInput) => { c.embeddedMemory = true; } };
const serve: FlagSpec[] = [
  port, host, dataDir, couch, prefix, writerRole,
  { name: 'threads', value: 'N', help: 'node worker threads (LIVELY_THREADS)', config: (v, c) => { c.threads = toInt('threads', v, 1); } },
  { name: 'body-limit', value: 'BYTES', help: 'largest request body for a trigger', config: (v, c) => { c.bodyLimit = toInt('body-limit', v, 1); } },
  { name: 'log-level', value: 'LEVEL', help: 'debug, info, warn, error or silent (LIVELY_LOG_LEVEL)', config: (v, c) => { c.logLevel = v as ConfigInput['logLevel']; } },
  memory,
];
const noSample: FlagSpec = { name: 'no-sample', help: 'do not deploy examples/hello into an empty store', config: (_v, c) => { c.sample = false; } };

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
    flags: [...serve, noSample, help],
    positional: [0, 0],
  },
  {
    name: 'init', args: '', summary: 'create the databases, their _security and validation documents',
    flags: [dataDir, couch, prefix, writerRole, memory, url, user, help], positional: [0, 0],
  },
  {
    name: 'deploy', args: '<dir>', summary: 'push an app folder: events/*.json and workers/<name>/ (doc.json + files)',
    details: 'Only documents whose content changed are written. The whole folder is checked first:\n'
      + 'a missing doc.json, bad JSON or a missing delegate file fails naming the file, writing nothing.\n'
      + 'Uses the runtime running on the data directory, COUCHDB_URL, or --url through a runtime.',
    flags: [dataDir, couch, prefix, writerRole, url, user, json, help], positional: [1, 1],
  },
  {
    name: 'dev', args: '<dir>', summary: 'deploy, then watch the folder and push every change',
    details: 'Starts a runtime unless one runs on the data directory (or --url / COUCHDB_URL is given).\n'
      + 'Edits, new and deleted files are pushed within a second; a file deleted from the folder removes\n'
      + 'its document. A broken file is reported and the last good version keeps running.',
    flags: [...serve, noSample, url, user, json, help], positional: [1, 1],
  },
  {
    name: 'trigger', args: '<path>', summary: 'fire /_events/<path> on the running runtime',
    details: 'Prints the reply. With --wait, exits 1 when a worker did not end ok.\n'
      + 'Sends credentials only when --user / LIVELY_USER is given (events with "auth").',
    flags: [
      { name: 'data', aliases: ['d'], value: 'JSON', help: 'JSON request body (makes the method POST unless --method)' },
      { name: 'method', aliases: ['X'], value: 'M', help: 'HTTP method (default GET, POST with --data)' },
      { name: 'wait', aliases: ['w'], help: 'reply when the workers are done, with their results' },
      url, { ...user, help: 'credentials for events with "auth" (LIVELY_USER, or LIVELY_USER=NAME with LIVELY_PASSWORD); none by default' },
      dataDirOnly, port, host, json, help,
    ],
    positional: [1, 1],
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
    'livelycouch <command> --help shows the options of one command.',
  ].join('\n') + '\n';
}
