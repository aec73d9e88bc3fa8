/**
 * Secrets: values such as API keys that workers need and the app must not carry. They live in
 * `<prefix>secrets`, a database for server admins only that is not one of the app's (events and
 * workers replicate; this one is never named by a deploy or a replication of the app), one
 * document per secret: `{ "_id": "MAIL_TOKEN", "value": "…" }`. A worker document names the ones
 * it gets (`"secrets": ["MAIL_TOKEN"]`).
 *
 * The runtime holds them in memory, loaded at start and kept current from the database's
 * `_changes`, so a changed secret reaches the next message; `onChange` tells the runtime which
 * names changed (process workers were started with the old value and are replaced). Every value
 * is handed to the log's redaction, so it never reaches logs, activation records or replies.
 */
import { LivelyError, describeError } from '../shared/errors.ts';
import { rememberSecretValue, type Logger } from '../shared/logger.ts';
import { ChangesFeed } from '../store/feed.ts';
import { readChanges, statusOf, type ChangeRow, type DocumentScope } from '../store/couch.ts';

/** An environment variable's name: what a process worker gets it as. */
export const kSecretName = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** A value larger than this is not a key but a file. */
export const kMaxSecretBytes = 64 * 1024;

export function secretNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string' || !kSecretName.test(name)) return `a secret name is letters, digits and "_", not starting with a digit, at most 128 characters; got ${JSON.stringify(name)}`;
  return undefined;
}

type SecretDoc = { _id: string; _rev?: string; value?: unknown };

export class SecretStore {
  private readonly values = new Map<string, string>();
  private feed?: ChangesFeed;
  /** names whose value changed (set, changed or removed) after the start. */
  onChange: (names: string[]) => void = () => {};

  constructor(private readonly db: DocumentScope<SecretDoc>, private readonly logger: Logger) {}

  async start(): Promise<void> {
    const first = await readChanges(this.db, { since: '0', include_docs: true });
    this.apply(first.results);
    this.feed = new ChangesFeed(this.db, {
      since: String(first.last_seq),
      includeDocs: true,
      logger: this.logger,
      onBatch: async (rows) => {
        const changed = this.apply(rows);
        if (changed.length > 0) this.onChange(changed);
      },
    });
    this.feed.on('error', (err: unknown) => this.logger.error('secrets feed stopped', { error: describeError(err) }));
    this.feed.start();
  }

  async stop(): Promise<void> {
    await this.feed?.stop();
  }

  private apply(rows: ChangeRow[]): string[] {
    const changed: string[] = [];
    for (const row of rows) {
      if (row.id.startsWith('_design/')) continue;
      const value = row.deleted ? undefined : (row.doc as SecretDoc | undefined)?.value;
      const before = this.values.get(row.id);
      if (typeof value === 'string') {
        rememberSecretValue(value);
        this.values.set(row.id, value);
      } else {
        this.values.delete(row.id);
      }
      if (before !== this.values.get(row.id)) changed.push(row.id);
    }
    return changed;
  }

  /** The names set, sorted; never the values. */
  names(): string[] {
    return [...this.values.keys()].sort();
  }

  /** The values of `names`; LC_SECRET_MISSING naming the first that is not set. */
  resolve(workerId: string, names: readonly string[]): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of names) {
      const v = this.values.get(name);
      if (v === undefined) throw new LivelyError('LC_SECRET_MISSING', `worker "${workerId}": secret "${name}" is not set (livelycouch secret set ${name})`, { secret: name });
      out[name] = v;
    }
    return out;
  }

  /** Sets a secret in the database (the feed brings it into memory); true when it was new. */
  async set(name: string, value: string): Promise<boolean> {
    const problem = secretNameProblem(name);
    if (problem) throw new LivelyError('LC_BAD_SECRET', problem);
    if (typeof value !== 'string' || value === '') throw new LivelyError('LC_BAD_SECRET', `secret "${name}": the value must be a non-empty string`);
    if (Buffer.byteLength(value) > kMaxSecretBytes) throw new LivelyError('LC_BAD_SECRET', `secret "${name}": the value is larger than ${kMaxSecretBytes} bytes`);
    rememberSecretValue(value);
    for (let attempt = 0; ; attempt++) {
      const rev = await this.revOf(name);
      try {
        await this.db.insert({ _id: name, value, ...(rev ? { _rev: rev } : {}) });
        this.update(name, value);
        return rev === undefined;
      } catch (err) {
        if (statusOf(err) !== 409 || attempt >= 3) throw err;
      }
    }
  }

  /** Removes a secret; false when it was not set. */
  async remove(name: string): Promise<boolean> {
    const problem = secretNameProblem(name);
    if (problem) throw new LivelyError('LC_BAD_SECRET', problem);
    for (let attempt = 0; ; attempt++) {
      const rev = await this.revOf(name);
      if (rev === undefined) return false;
      try {
        await this.db.destroy(name, rev);
        this.update(name, undefined);
        return true;
      } catch (err) {
        if (statusOf(err) !== 409 || attempt >= 3) throw err;
      }
    }
  }

  /** At once rather than when the feed brings it: the next message has it. */
  private update(name: string, value: string | undefined): void {
    if (this.values.get(name) === value) return;
    if (value === undefined) this.values.delete(name);
    else this.values.set(name, value);
    this.onChange([name]);
  }

  private async revOf(name: string): Promise<string | undefined> {
    try {
      return (await this.db.get(name))._rev;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }
}
