/**
 * `POST /_replicate` on the embedded store, as CouchDB answers it: one-shot replication between
 * local databases and CouchDB URLs, with `selector` and `doc_ids`. express-pouchdb's own route
 * is left out (it checks nobody and drops `selector`); here it needs the store admin. A
 * continuous replication is refused: the embedded store has no replicator to keep one running.
 */
export interface ReplicateRequest {
  source: string;
  target: string;
  selector?: Record<string, unknown>;
  doc_ids?: string[];
  create_target?: boolean;
}

export interface ReplicateResult {
  docs_read: number;
  docs_written: number;
  doc_write_failures: number;
  start_time: string;
  end_time: string;
  last_seq: unknown;
}

/** Runs one replication in the store's PouchDB; missing local databases throw `not_found`. */
export type Replicator = (req: ReplicateRequest) => Promise<ReplicateResult>;

/** CouchDB 3 answers a missing source or target with a 500 whose error is "error". */
export const kMissingEnd = 'error';

/** The request's problem in CouchDB's words, or the request checked. */
export function parseReplicateBody(body: unknown): ReplicateRequest | string {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return 'Request body must be a JSON object';
  const b = body as Record<string, unknown>;
  const end = (v: unknown) => typeof v === 'string' ? v : v && typeof v === 'object' && typeof (v as { url?: unknown }).url === 'string' ? (v as { url: string }).url : undefined;
  const source = end(b.source);
  const target = end(b.target);
  if (!source) return 'Missing or invalid `source` field';
  if (!target) return 'Missing or invalid `target` field';
  if (b.continuous === true) return 'continuous replication is not supported by the embedded store; use a one-shot replication';
  if (b.cancel === true) return 'the embedded store runs no replication that could be cancelled';
  if (b.selector !== undefined && (!b.selector || typeof b.selector !== 'object' || Array.isArray(b.selector))) return '`selector` must be a JSON object';
  if (b.doc_ids !== undefined && !(Array.isArray(b.doc_ids) && b.doc_ids.every((d) => typeof d === 'string'))) return '`doc_ids` must be an array of strings';
  return {
    source, target,
    ...(b.selector ? { selector: b.selector as Record<string, unknown> } : {}),
    ...(b.doc_ids ? { doc_ids: b.doc_ids as string[] } : {}),
    ...(b.create_target === true ? { create_target: true } : {}),
  };
}

/** CouchDB's answer to a finished one-shot replication. */
export function replicationReply(r: ReplicateResult, sessionId: string): Record<string, unknown> {
  if (r.docs_read === 0 && r.docs_written === 0) return { ok: true, no_changes: true, session_id: sessionId, source_last_seq: r.last_seq };
  return {
    ok: true,
    session_id: sessionId,
    source_last_seq: r.last_seq,
    history: [{
      session_id: sessionId, start_time: r.start_time, end_time: r.end_time, recorded_seq: r.last_seq,
      docs_read: r.docs_read, docs_written: r.docs_written, doc_write_failures: r.doc_write_failures,
    }],
  };
}
