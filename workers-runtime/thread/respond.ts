/**
 * `ctx.respond(status, body, headers)`: the response an event with `"response"` sends, as the
 * result a worker could also return by hand. Bytes (a Buffer or any Uint8Array) travel as
 * `bodyBase64`, since a result crosses to the runtime as JSON.
 */
export function makeResponse(status: unknown, body?: unknown, headers?: unknown): Record<string, unknown> {
  const r: Record<string, unknown> = { status: status === undefined ? 200 : status };
  if (headers !== undefined) r.headers = headers;
  if (body instanceof Uint8Array) r.bodyBase64 = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('base64');
  else if (body !== undefined) r.body = body;
  return r;
}
