// `require('livelycouch/worker')` for node workers run as child processes ("isolation": "process"):
// the same helper API thread workers get, spoken as command lines on the process's real stdout.
'use strict';

function write(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
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
  const r = { status: status === undefined ? 200 : status };
  if (headers !== undefined) r.headers = headers;
  if (body instanceof Uint8Array) r.bodyBase64 = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('base64');
  else if (body !== undefined) r.body = body;
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
