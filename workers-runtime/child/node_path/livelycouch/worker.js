// `require('livelycouch/worker')` for node workers run as child processes ("isolation": "process"):
// the same helper API thread workers get, spoken as command lines on the process's real stdout.
'use strict';

// While serve() runs, lines are gathered and written once per turn of the event loop.
let pending;
function write(obj) {
  const line = JSON.stringify(obj) + '\n';
  if (pending === undefined) { process.stdout.write(line); return; }
  if (pending === '') setImmediate(flush);
  pending += line;
}
function flush() {
  const text = pending;
  pending = '';
  if (text) process.stdout.write(text);
}

exports.emit = function emit(name, parameters) {
  write({ emit: String(name), parameters: parameters || {} });
};

exports.log = function log(msg, level) {
  write({ log: typeof msg === 'string' ? msg : String(msg && msg.message ? msg.message : msg), level: level || 'info' });
};

/** Marks the current message done with this result. */
exports.result = function result(value) {
  write({ result: value === undefined ? null : value });
};

/** Marks the current message done, keeping a result given earlier (if any). */
exports.done = function done() {
  write({ done: true });
};

/**
 * Marks the current message done with an HTTP response (events with "response"): status,
 * body (a string, a JSON value, or a Buffer sent as bytes) and headers.
 */
exports.respond = function respond(status, body, headers) {
  const r = response(status, body, headers);
  write({ result: r });
  return r;
};

let client;
Object.defineProperty(exports, 'couch', {
  enumerable: true,
  get() {
    if (!process.env.COUCHDB_URL) throw new Error('this worker has no database access: set "couch": true in its document');
    if (!client) {
      // A worker waiting on the store looks, to the runtime, exactly like one waiting for its
      // next message: one that uses the store ends each message with result() or done() instead.
      write({ acknowledges: true });
      // nano resolves from the runtime's own node_modules (on NODE_PATH).
      client = require('nano')(process.env.COUCHDB_URL);
    }
    return client;
  },
});

/**
 * Runs `handler(message, ctx)` for each message on stdin, as a thread worker's handler is run:
 * what it returns (or resolves to) is the message's result; `ctx.emit`, `ctx.log` and
 * `ctx.respond` speak for that message. The process declares it takes up to `pipeline`
 * messages at once (default 16): they wait in the pipe instead of the process waking once per
 * message, and handlers that await run side by side. Every line names its message's id, so an
 * answer reaches its own message whatever the order. A handler that throws logs the error and
 * ends its message without a result.
 */
exports.serve = function serve(handler, options) {
  const depth = Math.max(1, Math.min(256, Math.floor((options && options.pipeline) || 16)));
  pending = '';
  write({ pipeline: depth });
  flush();
  let buf = '';
  const each = (line) => {
    if (!line) return;
    const message = JSON.parse(line);
    const id = message.id;
    delete message.id;
    const tag = (obj) => { if (id !== undefined) obj.id = id; write(obj); };
    let responded;
    const ctx = {
      emit: (name, parameters) => tag({ emit: String(name), parameters: parameters || {} }),
      log: (msg, level) => tag({ log: typeof msg === 'string' ? msg : String(msg && msg.message ? msg.message : msg), level: level || 'info' }),
      respond: (status, body, headers) => (responded = response(status, body, headers)),
    };
    const answer = (value) => tag({ result: value === undefined ? (responded === undefined ? null : responded) : value });
    const failed = (err) => { tag({ log: String(err && err.stack ? err.stack : err), level: 'error' }); tag({ done: true }); };
    let out;
    try { out = handler(message, ctx); } catch (err) { failed(err); return; }
    if (out && typeof out.then === 'function') out.then(answer, failed);
    else answer(out);
  };
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => {
    buf += chunk;
    let nl;
    let start = 0;
    while ((nl = buf.indexOf('\n', start)) !== -1) { each(buf.slice(start, nl)); start = nl + 1; }
    buf = buf.slice(start);
  });
};

function response(status, body, headers) {
  const r = { status: status === undefined ? 200 : status };
  if (headers !== undefined) r.headers = headers;
  if (body instanceof Uint8Array) r.bodyBase64 = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('base64');
  else if (body !== undefined) r.body = body;
  return r;
}
