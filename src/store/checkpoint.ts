/**
 * A feed's position kept in a `_local/<name>` document, as CouchDB replication keeps its own:
 * `_local` documents are never replicated and never show in `_changes`.
 */
import { LivelyError } from '../shared/errors.ts';
import { getDoc, sendJson, statusOf, type DocumentScope } from './couch.ts';

interface CheckpointDoc {
  _id: string;
  _rev?: string;
  seq: string;
  updated: string;
}

export class LocalCheckpoint {
  private readonly db: DocumentScope<unknown>;
  readonly id: string;
  private rev: string | undefined;

  constructor(db: DocumentScope<unknown>, name: string) {
    if (typeof name !== 'string' || !/^[A-Za-z0-9_.:-]+$/.test(name)) {
      throw new LivelyError('LC_CONFIG', `checkpoint name must be letters, digits, '_', '.', ':' or '-': ${JSON.stringify(name)}`);
    }
    this.db = db;
    this.id = `_local/${name}`;
  }

  /** The saved seq, or undefined when nothing was saved yet. */
  async load(): Promise<string | undefined> {
    try {
      const doc = await getDoc<CheckpointDoc>(this.db, this.id);
      this.rev = doc._rev;
      return typeof doc.seq === 'string' ? doc.seq : undefined;
    } catch (err) {
      if (statusOf(err) === 404) {
        this.rev = undefined;
        return undefined;
      }
      throw err;
    }
  }

  /** Saves `seq`; another writer's newer revision is read and overwritten once. */
  async save(seq: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const doc: CheckpointDoc = { _id: this.id, seq: String(seq), updated: new Date().toISOString() };
      if (this.rev) doc._rev = this.rev;
      try {
        // written after every batch of a changes trigger: undici, not nano (./couch.ts, sendJson)
        const res = await sendJson<{ rev: string }>(this.db.server, 'PUT', { db: this.db.config.db, doc: this.id }, JSON.stringify(doc));
        this.rev = res.rev;
        return;
      } catch (err) {
        if (statusOf(err) !== 409 || attempt > 0) throw err;
        await this.load();
      }
    }
  }
}
