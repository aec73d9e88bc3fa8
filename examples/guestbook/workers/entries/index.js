// The guestbook's JSON API: GET lists the newest entries, POST adds one (400 with the
// problems when it is not valid), GET /api/entries/:id reads one (the event binds `id` as an
// argument). `db` is an argument of the worker document, so a request cannot point it at
// another database.
const { problemsOf } = require('./validate.js');

module.exports = async (msg, ctx) => {
  const { db, max } = msg.arguments;
  const book = ctx.couch.use(db);
  if (msg.arguments.id !== undefined) return one(book, msg.arguments.id);
  if (msg.method === 'POST') {
    const entry = msg.request.body;
    const problems = problemsOf(entry);
    if (problems.length > 0) return ctx.respond(400, { error: 'invalid entry', problems });
    const created = new Date().toISOString();
    // ids sort by time, so the newest come first in a descending _all_docs
    const id = `entry-${created}-${Math.random().toString(36).slice(2, 8)}`;
    const doc = { type: 'entry', name: entry.name.trim(), message: entry.message.trim(), created };
    await book.insert(doc, id);
    ctx.log(`entry ${id} from ${doc.name}`);
    return ctx.respond(201, { id, ...doc }, { location: `/_events/api/entries/${encodeURIComponent(id)}` });
  }
  const page = await book.list({ include_docs: true, descending: true, startkey: 'entry-\ufff0', endkey: 'entry-', limit: max });
  const entries = page.rows.map((r) => ({ id: r.id, name: r.doc.name, message: r.doc.message, created: r.doc.created }));
  return { status: 200, headers: { 'cache-control': 'no-store' }, body: { entries } };
};

async function one(book, id) {
  if (!id.startsWith('entry-')) return { status: 404, body: { error: 'no such entry' } };
  try {
    const doc = await book.get(id);
    return { status: 200, body: { id, name: doc.name, message: doc.message, created: doc.created } };
  } catch (err) {
    if (err.statusCode === 404) return { status: 404, body: { error: 'no such entry' } };
    throw err;
  }
}
