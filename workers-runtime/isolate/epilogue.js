// Runs inside an isolate worker's sandbox, after its bundle: finds the handler and installs
// `__lc_run`, which the host takes a reference to and then deletes from the global object.
// The host (src/workers/dispatch/isolate.ts) loads this file as text; it is not a module.
delete globalThis.require;
const __b64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
// An isolate has no Buffer or btoa: bytes become base64 here, for a bodyBase64.
function __base64(bytes) {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += __b64[(n >> 18) & 63] + __b64[(n >> 12) & 63] + (i + 1 < bytes.length ? __b64[(n >> 6) & 63] : '=') + (i + 2 < bytes.length ? __b64[n & 63] : '=');
  }
  return out;
}
function __response(status, body, headers) {
  const r = { status: status === undefined ? 200 : status };
  if (headers !== undefined) r.headers = headers;
  if (body instanceof Uint8Array) r.bodyBase64 = __base64(body);
  else if (body !== undefined) r.body = body;
  return r;
}
const __exp = __module.exports;
const __handler = typeof __exp === 'function' ? __exp : (__exp && typeof __exp.default === 'function' ? __exp.default : undefined);
globalThis.__lc_run = async function (token, json, secretsJson) {
  if (!__handler) throw new Error('the delegate exports no handler function (module.exports = fn, or export default fn)');
  const log = (msg, level) => __bridge.log.applyIgnored(undefined, [token, String(msg), typeof level === 'string' ? level : 'info']);
  let responded;
  const ctx = {
    emit: (name, parameters) => __bridge.emit.applyIgnored(undefined, [token, String(name), JSON.stringify(parameters === undefined ? {} : parameters)]),
    log,
    respond: (status, body, headers) => (responded = __response(status, body, headers)),
    secrets: Object.freeze(JSON.parse(secretsJson)),
  };
  __helpers.set(token, ctx);
  __current = token;
  try {
    let result = await __handler(JSON.parse(json), ctx);
    if (result === undefined) result = responded;
    return result === undefined ? undefined : JSON.stringify(result);
  } finally {
    __helpers.delete(token);
  }
};
