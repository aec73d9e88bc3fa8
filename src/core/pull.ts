/**
 * `livelycouch deploy --from <couch url>`: an app's events and workers replicated from another
 * CouchDB (another runtime's store) into this one with CouchDB's own `_replicate`, the way apps
 * travel between CouchDBs. Design documents stay where they are (each store has its own
 * validation documents); secrets never travel, they live apart from the app.
 */
import { credentialsApart, type ServerScope } from '../store/couch.ts';
import { LivelyError, describeError } from '../shared/errors.ts';

export interface PullReport { db: string; from: string; docsWritten: number; docsRead: number }

/** The source URL without credentials, for messages. */
function shown(url: string): string {
  return credentialsApart(url).base;
}

/** Replicates `<fromPrefix>events` and `<fromPrefix>workers` of `from` into `<prefix>…` of `server` (whose URL is `to`). */
export async function pullApp(server: ServerScope, to: string, from: string, opts: { prefix: string; fromPrefix: string }): Promise<PullReport[]> {
  const out: PullReport[] = [];
  for (const kind of ['workers', 'events']) {
    const source = `${from.replace(/\/$/, '')}/${opts.fromPrefix}${kind}`;
    const target = `${to.replace(/\/$/, '')}/${opts.prefix}${kind}`;
    let res: { ok?: boolean; history?: Array<{ docs_written?: number; docs_read?: number }>; no_changes?: boolean };
    try {
      res = await server.request({
        db: '_replicate', method: 'POST',
        body: { source, target, selector: { _id: { $regex: '^[^_]' } } },
      }) as typeof res;
    } catch (err) {
      throw new LivelyError('LC_BAD_REQUEST', `replicating ${shown(source)} failed: ${describeError(err)}`);
    }
    const h = res.history?.[0];
    out.push({ db: `${opts.prefix}${kind}`, from: shown(source), docsWritten: h?.docs_written ?? 0, docsRead: h?.docs_read ?? 0 });
  }
  return out;
}
