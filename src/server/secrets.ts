/**
 * The secrets API under /_lively/secrets (server admins only, as all of /_lively but health):
 *
 *   GET    /_lively/secrets         → 200 {"secrets":["MAIL_TOKEN",…]}   names only, never values
 *   PUT    /_lively/secrets/<name>  → 201 {"ok":true,"name","created"}  body {"value":"…"}
 *   DELETE /_lively/secrets/<name>  → 200 {"ok":true,"name"}, 404 when it was not set
 *
 * A bad name or value is 400 LC_BAD_SECRET. No reply ever carries a value.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LivelyError } from '../shared/errors.ts';
import type { EventFirer } from './firer.ts';
import { parseJson, readBody } from './body.ts';
import { sendJson } from './reply.ts';

export const kSecretsPath = '/_lively/secrets';

function allow(req: IncomingMessage, methods: string[], pathname: string): void {
  if (!methods.includes(req.method ?? 'GET')) {
    throw new LivelyError('LC_METHOD_NOT_ALLOWED', `${pathname} accepts ${methods.filter((m) => m !== 'HEAD').join(', ')} only`, { allow: methods });
  }
}

export async function handleSecrets(req: IncomingMessage, res: ServerResponse, pathname: string, firer: EventFirer, bodyLimit: number): Promise<void> {
  const secrets = firer.secrets;
  if (!secrets) throw new LivelyError('LC_NOT_FOUND', 'this runtime keeps no secrets');
  const rest = pathname.slice(kSecretsPath.length);
  if (rest === '' || rest === '/') {
    allow(req, ['GET', 'HEAD'], pathname);
    sendJson(res, 200, { secrets: secrets.names() });
    return;
  }
  let name: string;
  try { name = decodeURIComponent(rest.slice(1)); } catch { throw new LivelyError('LC_BAD_SECRET', 'the secret name in the path is not valid'); }
  allow(req, ['PUT', 'DELETE'], pathname);
  if (req.method === 'DELETE') {
    await readBody(req, bodyLimit);
    if (!(await secrets.remove(name))) throw new LivelyError('LC_NOT_FOUND', `no secret "${name}"`);
    sendJson(res, 200, { ok: true, name });
    return;
  }
  const buf = await readBody(req, bodyLimit);
  let body: unknown;
  try { body = buf ? parseJson(buf.toString('utf8')) : undefined; } catch { throw new LivelyError('LC_BAD_SECRET', 'the body must be JSON: {"value": "…"}'); }
  const value = body && typeof body === 'object' ? (body as { value?: unknown }).value : undefined;
  if (typeof value !== 'string') throw new LivelyError('LC_BAD_SECRET', 'the body must be JSON: {"value": "…"} with a string value');
  const created = await secrets.set(name, value);
  sendJson(res, 201, { ok: true, name, created });
}
