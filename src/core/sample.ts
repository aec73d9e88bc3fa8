/** A first `npm start` on an empty store deploys examples/hello, so the README's curl works at once. */
import { fileURLToPath } from 'node:url';
import type { DocumentScope } from '../store/couch.ts';
import type { Logger } from '../shared/logger.ts';
import { deployDir } from './deploy.ts';

type Db = DocumentScope<Record<string, unknown>>;

export const sampleDir = fileURLToPath(new URL('../../examples/hello', import.meta.url));

export async function deploySampleIfEmpty(events: Db, workers: Db, logger: Logger): Promise<void> {
  const page = await events.list({ limit: 5 });
  if (page.rows.some((r) => !r.id.startsWith('_design/'))) return;
  const report = await deployDir(sampleDir, events, workers);
  logger.info('deployed the sample app (examples/hello)', { documents: report.written });
}
