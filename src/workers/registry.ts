/**
 * Worker documents by name, loaded with their attachments on first use and kept until
 * the workers database's `_changes` says the document changed. A change drops the cached
 * revision and tells the runtime, which retires the old instances in every dispatcher.
 */
import type { DocumentScope } from '../store/couch.ts';
import type { Config } from '../config/index.ts';
import { LivelyError } from '../shared/errors.ts';
import { parseWorkerDoc } from './worker-doc.ts';
import type { WorkerSpec } from './revision.ts';

type Defaults = Pick<Config, 'workerTimeout' | 'workerIdle' | 'workerConcurrency'>;

type Entry =
  | { state: 'ready'; spec: WorkerSpec }
  | { state: 'loading'; promise: Promise<WorkerSpec> }
  | { state: 'failed'; error: LivelyError };

export class WorkerRegistry {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly db: DocumentScope<Record<string, unknown>>, private readonly defaults: Defaults) {}

  /** The cached spec, without I/O: the trigger hot path. */
  peek(name: string): WorkerSpec | undefined {
    const e = this.entries.get(name);
    return e?.state === 'ready' ? e.spec : undefined;
  }

  /** Rejects with LC_WORKER_NOT_FOUND or LC_INVALID_WORKER (remembered until the document changes). */
  get(name: string): Promise<WorkerSpec> {
    const e = this.entries.get(name);
    if (e?.state === 'ready') return Promise.resolve(e.spec);
    if (e?.state === 'loading') return e.promise;
    if (e?.state === 'failed') return Promise.reject(e.error);
    const promise = this.load(name);
    const entry: Entry = { state: 'loading', promise };
    this.entries.set(name, entry);
    promise.then(
      (spec) => { if (this.entries.get(name) === entry) this.entries.set(name, { state: 'ready', spec }); },
      (error: unknown) => {
        if (this.entries.get(name) !== entry) return;
        // Only answers about the document are remembered; a store outage is retried next time.
        if (error instanceof LivelyError && (error.code === 'LC_WORKER_NOT_FOUND' || error.code === 'LC_INVALID_WORKER')) {
          this.entries.set(name, { state: 'failed', error });
        } else {
          this.entries.delete(name);
        }
      },
    );
    return promise;
  }

  /**
   * A change of the worker's document arrived. Returns true when a loaded revision was
   * replaced (the caller retires its instances).
   */
  changed(name: string, rev: string | undefined): boolean {
    const e = this.entries.get(name);
    if (!e) return false;
    if (e.state === 'ready' && rev !== undefined && e.spec.rev === rev) return false;
    this.entries.delete(name);
    return e.state === 'ready';
  }

  /** Documents that failed to load, with their reasons (status API). */
  invalid(): Array<{ id: string; reason: string }> {
    const out: Array<{ id: string; reason: string }> = [];
    for (const [id, e] of this.entries) if (e.state === 'failed') out.push({ id, reason: e.error.message });
    return out;
  }

  specs(): WorkerSpec[] {
    const out: WorkerSpec[] = [];
    for (const e of this.entries.values()) if (e.state === 'ready') out.push(e.spec);
    return out;
  }

  loaded(): Array<{ id: string; rev: string; type: string }> {
    const out: Array<{ id: string; rev: string; type: string }> = [];
    for (const e of this.entries.values()) if (e.state === 'ready') out.push({ id: e.spec.id, rev: e.spec.rev, type: e.spec.type });
    return out;
  }

  private async load(name: string): Promise<WorkerSpec> {
    let doc: unknown;
    try {
      doc = await this.db.get(name, { attachments: true });
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      if (status === 404) throw new LivelyError('LC_WORKER_NOT_FOUND', `no worker document "${name}"`);
      throw err;
    }
    const parsed = parseWorkerDoc(doc, this.defaults);
    if (!parsed.ok) throw new LivelyError('LC_INVALID_WORKER', `worker "${name}": ${parsed.reason}`);
    return parsed.spec;
  }
}
