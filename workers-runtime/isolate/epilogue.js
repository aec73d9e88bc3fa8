// Runs inside an isolate worker's sandbox, after its bundle: finds the handler and installs
// `__lc_run_batch`, which the host takes a reference to and then deletes from the global object.
// The host sends a turn's messages in one call; answers go back through the bridge as they
// finish, those of one microtask checkpoint together, so a message costs no call of its own.
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
async function __run(token, json, secrets) {
  if (!__handler) throw new Error('the delegate exports no handler function (module.exports = fn, or export default fn)');
  const log = (msg, level) => __bridge.log.applyIgnored(undefined, [token, String(msg), typeof level === 'string' ? level : 'info']);
  let responded;
  const ctx = {
    emit: (name, parameters) => __bridge.emit.applyIgnored(undefined, [token, String(name), JSON.stringify(parameters === undefined ? {} : parameters)]),
    log,
    respond: (status, body, headers) => (responded = __response(status, body, headers)),
    secrets: Object.freeze(secrets),
  };
  __helpers.set(token, ctx);
  __current = token;
  try {
    let result = await __handler(JSON.parse(json), ctx);
    if (result === undefined) result = responded;
    return result === undefined ? null : JSON.stringify(result);
  } finally {
    __helpers.delete(token);
  }
}
// [token, 0, result JSON or null] or [token, 1, message, stack or null]
let __answers = [];
function __answer(entry) {
  if (__answers.push(entry) > 1) return;
  Promise.resolve().then(() => {
    const out = JSON.stringify(__answers);
    __answers = [];
    __bridge.done.applyIgnored(undefined, [out]);
  });
}
function __failure(token, e) {
  const message = e !== null && typeof e === 'object' && 'message' in e ? String(e.message) : String(e);
  return [token, 1, message, e !== null && typeof e === 'object' && typeof e.stack === 'string' ? e.stack : null];
}
globalThis.__lc_run_batch = function (tokensJson, lines, secretsJson) {
  const tokens = JSON.parse(tokensJson);
  const messages = lines.split('\n');
  const secrets = JSON.parse(secretsJson);
  // settles when every message has answered: the host hears of an isolate that died meanwhile
  // (counted by hand: Promise.all would add a frame of its own to a thrown error's stack)
  return new Promise((resolve) => {
    let left = tokens.length;
    const settled = () => { if (--left === 0) resolve(undefined); };
    if (left === 0) resolve(undefined);
    for (let i = 0; i < tokens.length; i++) {
      const token = tokens[i];
      __run(token, messages[i], secrets[i]).then((r) => __answer([token, 0, r]), (e) => __answer(__failure(token, e))).then(settled);
    }
  });
};
