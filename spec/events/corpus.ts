/**
 * Event and worker documents, good and bad, shared by the parser spec and the
 * validate_doc_update spec so both judge the same documents. Each bad one names the
 * field the reason must start with.
 */

/** The seed's event document, exactly as the announcement shows it (minus its trailing comma). */
export const seedEvent = {
  _id: 'email_event',
  trigger: { '/send_email': { method: 'GET' } },
  workers: { send_email: { recipient: 'support@yourcompany.com' } },
};

/** The seed's worker document, with stubbed attachments as CouchDB hands them to validate_doc_update. */
export const seedWorker = {
  _id: 'send_email',
  arguments: {},
  delegate: 'sendmail.js',
  type: 'node',
  _attachments: {
    'sendmail.js': { content_type: 'application/javascript', stub: true, length: 10, digest: 'md5-x' },
    'someOtherScript.js': { content_type: 'application/javascript', stub: true, length: 10, digest: 'md5-y' },
  },
};

const ev = (extra: Record<string, unknown>) => ({ _id: 'e', workers: { w: {} }, ...extra });

export const goodEvents: Array<[string, Record<string, unknown>]> = [
  ['the seed event', seedEvent],
  ['the array form', { _id: 'a', trigger: [{ path: '/p', method: 'GET', parameters: { color: ':color' } }], workers: [{ name: 'w', parameters: { x: 1 } }] }],
  ['"arguments" as a synonym of "parameters"', { _id: 'a', trigger: [{ path: '/p' }], workers: [{ name: 'w', arguments: { x: 1 } }] }],
  ['a worker without arguments in the array form', { _id: 'a', trigger: [], workers: [{ name: 'w' }] }],
  ['"forward" in a worker entry (the original LivelyCouch\'s)', { _id: 'a', trigger: [{ path: '/p' }], workers: [{ name: 'w', parameters: { to: 'x' }, forward: ['to'] }] }],
  ['no trigger at all (fired by id)', { _id: 'by_id', workers: { w: {} } }],
  ['a method list', ev({ trigger: { '/p': { method: ['get', 'Post'] } } })],
  ['method "*"', ev({ trigger: { '/p': { method: '*' } } })],
  ['bindings and a wildcard', ev({ trigger: { '/emit_document/:db/:docid': {}, '/files/*': {}, '/': {}, '/*': {} } })],
  ['literal parameters', ev({ trigger: { '/p': { parameters: { n: 5, on: true, color: 'red' } } } })],
  ['a changes trigger (object form)', ev({ trigger: { changes: { db: 'inbox', selector: { type: 'mail' }, include_docs: true } } })],
  ['a changes trigger (array form)', ev({ trigger: [{ changes: { db: 'inbox' } }] })],
  ['schedule every "1m"', ev({ trigger: { schedule: { every: '1m' } } })],
  ['schedule every ms', ev({ trigger: [{ schedule: { every: 2500 } }] })],
  ['schedule every 1s, the shortest', ev({ trigger: { schedule: { every: '1s' } } })],
  ['schedule cron', ev({ trigger: { schedule: { cron: '*/5 * * * *' } } })],
  ['cron with ranges, lists, steps and names', ev({ trigger: { schedule: { cron: '0,30 8-18/2 1-15 jan-jun MON-FRI' } } })],
  ['cron in a time zone, no catch-up', ev({ trigger: { schedule: { cron: '0 9 * * mon-fri', tz: 'Europe/Berlin', catchup: 0 } } })],
  ['cron in UTC, catch-up once', ev({ trigger: [{ schedule: { cron: '0 0 1 * *', tz: 'UTC', catchup: 1 } }] })],
  ['disabled', ev({ disabled: true, trigger: { '/p': {} } })],
  ['auth user', ev({ auth: 'user' })],
  ['auth admin', ev({ auth: 'admin' })],
  ['auth role', ev({ auth: { role: 'ops' } })],
  ['auth roles', ev({ auth: { roles: ['ops', 'billing'] } })],
  ['durable', ev({ durable: true, trigger: { '/p': {} } })],
  ['durable false', ev({ durable: false })],
  ['a response worker (object form)', ev({ trigger: { '/p': {} }, workers: { w: {}, v: {} }, response: 'v' })],
  ['a response worker (array form)', { _id: 'a', trigger: [{ path: '/p' }], workers: [{ name: 'w' }], response: 'w' }],
  ['cors "*"', ev({ cors: '*' })],
  ['cors with every field', ev({ cors: { origins: ['https://app.example', 'http://localhost:8080'], credentials: true, headers: ['content-type', 'x-token'], expose: ['etag'], maxAge: 600 } })],
  ['cors for every origin without credentials', ev({ cors: { origins: '*', maxAge: 0 } })],
  ['a worker with a retry policy', ev({ workers: [{ name: 'w', parameters: { x: 1 }, retry: { attempts: 3, backoff: '1s' } }] })],
  ['a retry without backoff, and backoffs in ms and 0', ev({ workers: [{ name: 'a', retry: { attempts: 2 } }, { name: 'b', retry: { attempts: 10, backoff: 250 } }, { name: 'c', retry: { attempts: 1, backoff: 0 } }] })],
  ['"retry" in the object form is an argument named retry', ev({ workers: { w: { retry: 'anything' } } })],
  ['extra top-level fields (a description)', ev({ description: 'sends mail', _rev: '1-abc' })],
];

export const badEvents: Array<[string, unknown, string]> = [
  ['not an object', [1, 2], 'document: must be an object'],
  ['no _id', { trigger: {}, workers: {} }, '_id:'],
  ['disabled not boolean', ev({ disabled: 'yes' }), 'disabled:'],
  ['unknown auth', ev({ auth: 'everyone' }), 'auth:'],
  ['auth role empty', ev({ auth: { role: '' } }), 'auth.role:'],
  ['auth with an unknown field', ev({ auth: { role: 'x', name: 'y' } }), 'auth.name:'],
  ['auth roles empty', ev({ auth: { roles: [] } }), 'auth.roles:'],
  ['response naming a worker the event does not run', ev({ response: 'other' }), 'response:'],
  ['response naming no worker (array form)', { _id: 'a', workers: [{ name: 'w' }], response: 'v' }, 'response:'],
  ['response not a string', ev({ response: true }), 'response:'],
  ['cors neither "*" nor an object', ev({ cors: 'everyone' }), 'cors:'],
  ['cors without origins', ev({ cors: { credentials: false } }), 'cors.origins:'],
  ['cors origin with a path', ev({ cors: { origins: ['https://app.example/'] } }), 'cors.origins[0]:'],
  ['cors credentials for every origin', ev({ cors: { origins: '*', credentials: true } }), 'cors.credentials:'],
  ['cors header name with a space', ev({ cors: { origins: '*', headers: ['x token'] } }), 'cors.headers[0]:'],
  ['cors maxAge negative', ev({ cors: { origins: '*', maxAge: -1 } }), 'cors.maxAge:'],
  ['cors with an unknown field', ev({ cors: { origins: '*', methods: ['GET'] } }), 'cors.methods:'],
  ['auth roles not a list', ev({ auth: { roles: 'ops' } }), 'auth.roles:'],
  ['auth roles with an empty name', ev({ auth: { roles: ['ops', ''] } }), 'auth.roles[1]:'],
  ['auth role and roles', ev({ auth: { role: 'ops', roles: ['ops'] } }), 'auth: give "roles" or "role"'],
  ['auth object without roles', ev({ auth: {} }), 'auth.roles:'],
  ['trigger a string', ev({ trigger: '/x' }), 'trigger:'],
  ['path without "/"', ev({ trigger: { send_email: {} } }), 'trigger.send_email:'],
  ['method a number', ev({ trigger: { '/x': { method: 5 } } }), 'trigger["/x"].method: must be a string or a list of strings'],
  ['method list with a number', ev({ trigger: { '/x': { method: ['GET', 5] } } }), 'trigger["/x"].method:'],
  ['method list empty', ev({ trigger: { '/x': { method: [] } } }), 'trigger["/x"].method:'],
  ['method not a token', ev({ trigger: { '/x': { method: 'G ET' } } }), 'trigger["/x"].method: "G ET" is not an HTTP method'],
  ['method list item not a token', ev({ trigger: [{ path: '/x', method: ['GET', 'PO/ST'] }] }), 'trigger[0].method[1]:'],
  ['"*" in the middle', ev({ trigger: { '/a/*/b': {} } }), 'trigger["/a/*/b"]:'],
  ['"*" inside a segment', ev({ trigger: { '/a/b*': {} } }), 'trigger["/a/b*"]:'],
  ['empty segment', ev({ trigger: { '/a//b': {} } }), 'trigger["/a//b"]:'],
  ['trailing slash', ev({ trigger: { '/a/': {} } }), 'trigger["/a/"]:'],
  ['query in the path', ev({ trigger: { '/a?x=1': {} } }), 'trigger["/a?x=1"]:'],
  ['bad binding name', ev({ trigger: { '/a/:1x': {} } }), 'trigger["/a/:1x"]:'],
  ['empty binding name', ev({ trigger: { '/a/:': {} } }), 'trigger["/a/:"]:'],
  ['__proto__ as a binding', ev({ trigger: { '/a/:__proto__': {} } }), 'trigger["/a/:__proto__"]:'],
  ['a name bound twice', ev({ trigger: { '/a/:x/:x': {} } }), 'trigger["/a/:x/:x"]:'],
  ['trigger spec not an object', ev({ trigger: { '/x': 'GET' } }), 'trigger["/x"]:'],
  ['unknown field in a trigger', ev({ trigger: { '/x': { methods: ['GET'] } } }), 'trigger["/x"].methods: unknown field'],
  ['parameters not an object', ev({ trigger: { '/x': { parameters: ['a'] } } }), 'trigger["/x"].parameters:'],
  ['parameter value an object', ev({ trigger: { '/x': { parameters: { color: { a: 1 } } } } }), 'trigger["/x"].parameters.color:'],
  ['parameter value null', ev({ trigger: { '/x': { parameters: { color: null } } } }), 'trigger["/x"].parameters.color:'],
  ['parameter bad binding', ev({ trigger: { '/x': { parameters: { color: ':' } } } }), 'trigger["/x"].parameters.color:'],
  ['parameter binds a path name again', ev({ trigger: { '/x/:db': { parameters: { d: ':db' } } } }), 'trigger["/x/:db"].parameters.d:'],
  ['array trigger not an object', ev({ trigger: ['/x'] }), 'trigger[0]:'],
  ['array trigger with path and changes', ev({ trigger: [{ path: '/x', changes: { db: 'a' } }] }), 'trigger[0]:'],
  ['array trigger with nothing', ev({ trigger: [{ method: 'GET' }] }), 'trigger[0]:'],
  ['array trigger path not a string', ev({ trigger: [{ path: 5 }] }), 'trigger[0].path:'],
  ['array trigger unknown field', ev({ trigger: [{ path: '/x', verb: 'GET' }] }), 'trigger[0].verb:'],
  ['changes without db', ev({ trigger: { changes: {} } }), 'trigger.changes.db:'],
  ['changes db not a database name', ev({ trigger: [{ changes: { db: 'Inbox' } }] }), 'trigger[0].changes.db:'],
  ['changes selector a string', ev({ trigger: { changes: { db: 'a', selector: 'x' } } }), 'trigger.changes.selector:'],
  ['changes include_docs a string', ev({ trigger: { changes: { db: 'a', include_docs: 'yes' } } }), 'trigger.changes.include_docs:'],
  ['changes unknown field', ev({ trigger: { changes: { db: 'a', since: 'now' } } }), 'trigger.changes.since:'],
  ['changes beside another field', ev({ trigger: [{ changes: { db: 'a' }, method: 'GET' }] }), 'trigger[0].method:'],
  ['schedule empty', ev({ trigger: { schedule: {} } }), 'trigger.schedule:'],
  ['schedule both every and cron', ev({ trigger: { schedule: { every: '1m', cron: '* * * * *' } } }), 'trigger.schedule:'],
  ['every not a duration', ev({ trigger: { schedule: { every: 'soon' } } }), 'trigger.schedule.every:'],
  ['every zero', ev({ trigger: { schedule: { every: 0 } } }), 'trigger.schedule.every:'],
  ['every negative', ev({ trigger: [{ schedule: { every: -5 } }] }), 'trigger[0].schedule.every:'],
  ['every 1ms floods', ev({ trigger: { schedule: { every: '1ms' } } }), 'trigger.schedule.every: must be at least 1 s'],
  ['every 999 ms', ev({ trigger: [{ schedule: { every: 999 } }] }), 'trigger[0].schedule.every: must be at least 1 s'],
  ['every 0.5s', ev({ trigger: { schedule: { every: '0.5s' } } }), 'trigger.schedule.every: must be at least 1 s'],
  ['cron with four fields', ev({ trigger: { schedule: { cron: '* * * *' } } }), 'trigger.schedule.cron: must have five fields'],
  ['cron minute out of range', ev({ trigger: { schedule: { cron: '60 * * * *' } } }), 'trigger.schedule.cron: minute field'],
  ['cron hour out of range', ev({ trigger: { schedule: { cron: '0 24 * * *' } } }), 'trigger.schedule.cron: hour field'],
  ['cron day-of-month zero', ev({ trigger: { schedule: { cron: '0 0 0 * *' } } }), 'trigger.schedule.cron: day-of-month field'],
  ['cron unknown month name', ev({ trigger: { schedule: { cron: '0 0 1 foo *' } } }), 'trigger.schedule.cron: month field'],
  ['cron day-of-week 8', ev({ trigger: { schedule: { cron: '0 0 * * 8' } } }), 'trigger.schedule.cron: day-of-week field'],
  ['cron backwards range', ev({ trigger: { schedule: { cron: '30-10 * * * *' } } }), 'trigger.schedule.cron: minute field'],
  ['cron zero step', ev({ trigger: { schedule: { cron: '*/0 * * * *' } } }), 'trigger.schedule.cron: minute field'],
  ['cron empty list item', ev({ trigger: { schedule: { cron: '1,,2 * * * *' } } }), 'trigger.schedule.cron: minute field'],
  ['cron not a string', ev({ trigger: { schedule: { cron: 5 } } }), 'trigger.schedule.cron:'],
  ['schedule unknown field', ev({ trigger: { schedule: { at: '12:00' } } }), 'trigger.schedule.at:'],
  ['tz unknown zone', ev({ trigger: { schedule: { cron: '0 9 * * *', tz: 'Mars/Olympus_Mons' } } }), 'trigger.schedule.tz:'],
  ['tz not a zone name', ev({ trigger: { schedule: { cron: '0 9 * * *', tz: '+02:00' } } }), 'trigger.schedule.tz:'],
  ['tz with every', ev({ trigger: { schedule: { every: '1m', tz: 'UTC' } } }), 'trigger.schedule.tz: only a "cron" schedule'],
  ['catchup 2', ev({ trigger: [{ schedule: { every: '1m', catchup: 2 } }] }), 'trigger[0].schedule.catchup:'],
  ['catchup true', ev({ trigger: { schedule: { every: '1m', catchup: true } } }), 'trigger.schedule.catchup:'],
  ['workers missing', { _id: 'e', trigger: {} }, 'workers:'],
  ['workers a string', ev({ workers: 'send_email' }), 'workers:'],
  ['worker arguments a string', ev({ workers: { send_email: 'x' } }), 'workers["send_email"]:'],
  ['worker name starting with "_"', ev({ workers: { _all_docs: {} } }), 'workers["_all_docs"]:'],
  ['array worker without name', ev({ workers: [{ parameters: {} }] }), 'workers[0].name:'],
  ['array worker not an object', ev({ workers: ['send_email'] }), 'workers[0]:'],
  ['array worker parameters a list', ev({ workers: [{ name: 'w', parameters: [1] }] }), 'workers[0].parameters:'],
  ['array worker arguments a string', ev({ workers: [{ name: 'w', arguments: 'x' }] }), 'workers[0].arguments:'],
  ['array worker with both parameters and arguments', ev({ workers: [{ name: 'w', parameters: {}, arguments: {} }] }), 'workers[0]:'],
  ['array worker unknown field', ev({ workers: [{ name: 'w', args: {} }] }), 'workers[0].args:'],
  ['forward not a list', ev({ workers: [{ name: 'w', forward: 'to' }] }), 'workers[0].forward: must be a list'],
  ['forward with a non-string', ev({ workers: [{ name: 'w', forward: ['to', 5] }] }), 'workers[0].forward[1]:'],
  ['durable not boolean', ev({ durable: 'yes' }), 'durable: must be true or false'],
  ['retry not an object', ev({ workers: [{ name: 'w', retry: 3 }] }), 'workers[0].retry: must be an object'],
  ['retry without attempts', ev({ workers: [{ name: 'w', retry: { backoff: '1s' } }] }), 'workers[0].retry.attempts:'],
  ['retry attempts zero', ev({ workers: [{ name: 'w', retry: { attempts: 0 } }] }), 'workers[0].retry.attempts:'],
  ['retry attempts fractional', ev({ workers: [{ name: 'w', retry: { attempts: 2.5 } }] }), 'workers[0].retry.attempts:'],
  ['retry attempts over 10', ev({ workers: [{ name: 'w', retry: { attempts: 11 } }] }), 'workers[0].retry.attempts:'],
  ['retry attempts a string', ev({ workers: [{ name: 'w', retry: { attempts: '3' } }] }), 'workers[0].retry.attempts:'],
  ['retry backoff not a duration', ev({ workers: [{ name: 'w', retry: { attempts: 3, backoff: 'soon' } }] }), 'workers[0].retry.backoff:'],
  ['retry backoff negative', ev({ workers: [{ name: 'w', retry: { attempts: 3, backoff: -1 } }] }), 'workers[0].retry.backoff:'],
  ['retry backoff over an hour', ev({ workers: [{ name: 'w', retry: { attempts: 3, backoff: '2h' } }] }), 'workers[0].retry.backoff:'],
  ['retry unknown field', ev({ workers: [{ name: 'x', retry: { attempts: 3, delay: '1s' } }] }), 'workers[0].retry.delay: unknown field'],
  ['retry on the second worker', ev({ workers: [{ name: 'a' }, { name: 'b', retry: null }] }), 'workers[1].retry:'],
];

const wk = (extra: Record<string, unknown>) => ({ _id: 'w', delegate: 'main.js', ...extra });
const stub = { content_type: 'text/plain', stub: true };

export const goodWorkers: Array<[string, Record<string, unknown>]> = [
  ['the seed worker', seedWorker],
  ['no attachments yet', wk({})],
  ['every limit', wk({ type: 'python', timeout: 5, memory: 64, concurrency: 2, processes: 1, queue: 10, idle: 30, isolation: 'process', couch: true, ack: true, env: { A: 'b' }, arguments: { x: 1 } })],
  ['queue zero: nothing waits', wk({ concurrency: 1, queue: 0 })],
  ['secrets by name', wk({ secrets: ['MAIL_TOKEN', 'stripe_key_2'] })],
  ['isolate type', wk({ type: 'isolate', _attachments: { 'main.js': stub } })],
];

export const badWorkers: Array<[string, unknown, string]> = [
  ['not an object', 'x', 'document:'],
  ['type upper-case', wk({ type: 'Node' }), 'type:'],
  ['type a number', wk({ type: 1 }), 'type:'],
  ['no delegate', { _id: 'w' }, 'delegate:'],
  ['empty delegate', wk({ delegate: '' }), 'delegate:'],
  ['delegate not attached', wk({ _attachments: { 'other.js': stub } }), 'delegate: no attachment named "main.js"'],
  ['_attachments a list', wk({ _attachments: [] }), '_attachments:'],
  ['attachment with "/"', wk({ _attachments: { 'main.js': stub, 'a/b.js': stub } }), '_attachments["a/b.js"]: contains a path separator'],
  ['attachment with "\\"', wk({ _attachments: { 'main.js': stub, 'a\\b.js': stub } }), '_attachments["a\\\\b.js"]:'],
  ['attachment with NUL', wk({ _attachments: { 'main.js': stub, 'a\u0000b': stub } }), '_attachments["a\\u0000b"]:'],
  ['attachment with ".."', wk({ _attachments: { 'main.js': stub, 'a..b': stub } }), '_attachments["a..b"]:'],
  ['attachment starting with "."', wk({ _attachments: { 'main.js': stub, '.env': stub } }), '_attachments[".env"]:'],
  ['arguments a list', wk({ arguments: [] }), 'arguments:'],
  ['env with a number', wk({ env: { A: 1 } }), 'env:'],
  ['env a string', wk({ env: 'A=1' }), 'env:'],
  ['timeout zero', wk({ timeout: 0 }), 'timeout:'],
  ['memory a string', wk({ memory: '64' }), 'memory:'],
  ['idle negative', wk({ idle: -1 }), 'idle:'],
  ['concurrency fractional', wk({ concurrency: 1.5 }), 'concurrency:'],
  ['processes fractional', wk({ processes: 1.5 }), 'processes: must be a positive integer'],
  ['processes zero', wk({ processes: 0 }), 'processes: must be a positive number'],
  ['queue negative', wk({ queue: -1 }), 'queue: must be a non-negative integer'],
  ['queue fractional', wk({ queue: 2.5 }), 'queue:'],
  ['queue a string', wk({ queue: '10' }), 'queue:'],
  ['isolation unknown', wk({ isolation: 'vm' }), 'isolation:'],
  ['couch a string', wk({ couch: 'yes' }), 'couch:'],
  ['ack a string', wk({ ack: 'yes' }), 'ack: must be true or false'],
  ['secrets a string', wk({ secrets: 'MAIL_TOKEN' }), 'secrets: must be a list'],
  ['secret name starting with a digit', wk({ secrets: ['1TOKEN'] }), 'secrets[0]: must be a secret name'],
  ['secret name with a dash', wk({ secrets: ['OK', 'MAIL-TOKEN'] }), 'secrets[1]: must be a secret name'],
  ['secret named twice', wk({ secrets: ['A', 'A'] }), 'secrets[1]: "A" is named twice'],
];

/** Random documents built from the words the rules care about; seeded, so every run sees the same ones. */
export function randomEventDocs(count: number, seed = 7): Array<Record<string, unknown>> {
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const atoms = [null, 0, -1, 'GET', '/x', ':a', '*', '', true, [], {}, '/a/:b/*', '* * * * *', '1m', 'inbox'];
  const keys = ['_id', 'trigger', 'workers', 'path', 'method', 'parameters', 'changes', 'schedule', 'every', 'cron', 'db', 'name', 'disabled', 'auth', '/x', '/y/:id', 'role', 'roles'];
  const gen = (depth: number): unknown => {
    const r = rand();
    if (depth > 3 || r < 0.4) return atoms[Math.floor(rand() * atoms.length)];
    if (r < 0.6) return Array.from({ length: Math.floor(rand() * 3) }, () => gen(depth + 1));
    const o: Record<string, unknown> = {};
    for (let i = Math.floor(rand() * 4); i > 0; i--) o[keys[Math.floor(rand() * keys.length)]!] = gen(depth + 1);
    return o;
  };
  const docs: Array<Record<string, unknown>> = [];
  for (let i = 0; i < count; i++) docs.push({ _id: `f${i}`, trigger: gen(0), workers: gen(0), ...(rand() < 0.3 ? { auth: gen(1) } : {}) });
  return docs;
}
