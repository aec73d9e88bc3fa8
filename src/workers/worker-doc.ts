/**
 * Worker documents (DESIGN.md "Worker documents") → WorkerSpec.
 * The same rules are enforced on write by the workers database's validate_doc_update
 * (src/events/design.ts); this is the load-time check for documents that slipped in.
 */
import type { Config } from '../config/index.ts';
import type { Attachment, WorkerSpec } from './spec.ts';

export type WorkerDocResult = { ok: true; spec: WorkerSpec } | { ok: false; id: string; reason: string };

type Defaults = Pick<Config, 'workerTimeout' | 'workerIdle' | 'workerConcurrency'>;

const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
const posNum = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v > 0;

/** Why an attachment name may not become a file name, or undefined when it may. */
export function badAttachmentName(name: string): string | undefined {
  if (name.length === 0) return 'empty name';
  if (name.includes('/') || name.includes('\\')) return 'contains a path separator';
  if (name.includes('\0')) return 'contains a NUL byte';
  if (name.includes('..')) return 'contains ".."';
  if (name.startsWith('.')) return 'starts with a dot';
  return undefined;
}

/**
 * `doc` as returned by `db.get(id, { attachments: true })` (inline base64 data).
 * Time limits in the document are seconds (`timeout`, `idle`), as users write them.
 */
export function parseWorkerDoc(doc: unknown, defaults: Defaults): WorkerDocResult {
  const id = isObj(doc) && typeof doc._id === 'string' ? doc._id : '(no _id)';
  const fail = (reason: string): WorkerDocResult => ({ ok: false, id, reason });
  if (!isObj(doc)) return fail('document: must be an object');
  const type = doc.type === undefined ? 'node' : doc.type;
  if (typeof type !== 'string' || !/^[a-z0-9_-]+$/.test(type)) return fail('type: must be a lower-case name such as "node", "python", "sh" or "isolate"');
  if (typeof doc.delegate !== 'string' || doc.delegate.length === 0) return fail('delegate: must name the entry attachment');
  const rawAtts = doc._attachments ?? {};
  if (!isObj(rawAtts)) return fail('_attachments: must be an object');
  const attachments: Record<string, Attachment> = {};
  for (const [name, att] of Object.entries(rawAtts)) {
    const bad = badAttachmentName(name);
    if (bad) return fail(`_attachments["${name}"]: ${bad}`);
    if (!isObj(att) || typeof att.data !== 'string') return fail(`_attachments["${name}"]: data was not loaded`);
    attachments[name] = { contentType: typeof att.content_type === 'string' ? att.content_type : 'application/octet-stream', data: Buffer.from(att.data, 'base64') };
  }
  if (!attachments[doc.delegate]) return fail(`delegate: no attachment named "${doc.delegate}"`);
  if (doc.arguments !== undefined && !isObj(doc.arguments)) return fail('arguments: must be an object');
  if (doc.env !== undefined && (!isObj(doc.env) || !Object.values(doc.env).every((v) => typeof v === 'string'))) return fail('env: must be an object of strings');
  for (const k of ['timeout', 'memory', 'idle', 'concurrency'] as const) {
    if (doc[k] !== undefined && !posNum(doc[k])) return fail(`${k}: must be a positive number`);
  }
  if (doc.concurrency !== undefined && !Number.isInteger(doc.concurrency)) return fail('concurrency: must be a positive integer');
  if (doc.isolation !== undefined && doc.isolation !== 'thread' && doc.isolation !== 'process') return fail('isolation: must be "thread" or "process"');
  if (doc.couch !== undefined && typeof doc.couch !== 'boolean') return fail('couch: must be true or false');
  const seconds = (v: unknown, dflt: number) => (v === undefined ? dflt : Math.round((v as number) * 1000));
  return {
    ok: true,
    spec: {
      id,
      rev: typeof doc._rev === 'string' ? doc._rev : '0',
      type,
      isolation: doc.isolation === 'process' ? 'process' : 'thread',
      delegate: doc.delegate,
      attachments,
      arguments: (doc.arguments as Record<string, unknown> | undefined) ?? {},
      limits: {
        timeout: seconds(doc.timeout, defaults.workerTimeout),
        memory: doc.memory as number | undefined,
        concurrency: (doc.concurrency as number | undefined) ?? defaults.workerConcurrency,
        idle: seconds(doc.idle, defaults.workerIdle),
      },
      env: (doc.env as Record<string, string> | undefined) ?? {},
      couch: doc.couch === true,
    },
  };
}
