/**
 * Worker documents (DESIGN.md "Worker documents") → WorkerSpec.
 * The rules are the ones validate_doc_update enforces on write; checking them again at
 * load catches documents written before `init` installed validation.
 */
import type { Config } from '../config/index.ts';
import { compiledRules } from '../events/rules.ts';
import type { Attachment, WorkerSpec } from './revision.ts';

export type WorkerDocResult = { ok: true; spec: WorkerSpec } | { ok: false; id: string; reason: string };

type Defaults = Pick<Config, 'workerTimeout' | 'workerIdle' | 'workerConcurrency'>;

const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/**
 * `doc` as returned by `db.get(id, { attachments: true })` (inline base64 data).
 * Time limits in the document are seconds (`timeout`, `idle`), as users write them.
 */
export function parseWorkerDoc(doc: unknown, defaults: Defaults): WorkerDocResult {
  const id = isObj(doc) && typeof doc._id === 'string' ? doc._id : '(no _id)';
  const fail = (reason: string): WorkerDocResult => ({ ok: false, id, reason });
  // The same rules validate_doc_update applies on write (one source: src/events/rules.ts).
  const problem = compiledRules().workerProblem(doc);
  if (problem) return fail(problem);
  if (!isObj(doc)) return fail('document: must be an object');
  const type = (doc.type as string | undefined) ?? 'node';
  const delegate = doc.delegate as string;
  const attachments: Record<string, Attachment> = {};
  for (const [name, att] of Object.entries((doc._attachments ?? {}) as Record<string, unknown>)) {
    if (!isObj(att) || typeof att.data !== 'string') return fail(`_attachments["${name}"]: data was not loaded`);
    attachments[name] = { contentType: typeof att.content_type === 'string' ? att.content_type : 'application/octet-stream', data: Buffer.from(att.data, 'base64') };
  }
  if (!attachments[delegate]) return fail(`delegate: no attachment named "${delegate}"`);
  const seconds = (v: unknown, dflt: number) => (v === undefined ? dflt : Math.round((v as number) * 1000));
  return {
    ok: true,
    spec: {
      id,
      rev: typeof doc._rev === 'string' ? doc._rev : '0',
      type,
      isolation: doc.isolation === 'process' ? 'process' : 'thread',
      delegate,
      attachments,
      arguments: (doc.arguments as Record<string, unknown> | undefined) ?? {},
      limits: {
        timeout: seconds(doc.timeout, defaults.workerTimeout),
        memory: doc.memory as number | undefined,
        concurrency: (doc.concurrency as number | undefined) ?? defaults.workerConcurrency,
        ...(doc.processes === undefined ? {} : { processes: doc.processes as number }),
        queue: doc.queue as number | undefined,
        idle: seconds(doc.idle, defaults.workerIdle),
      },
      env: (doc.env as Record<string, string> | undefined) ?? {},
      couch: doc.couch === true,
      ...(doc.ack === true ? { ack: true } : {}),
      secrets: (doc.secrets as string[] | undefined) ?? [],
    },
  };
}
