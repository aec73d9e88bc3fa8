// Runs once for each change of the {{db}} database (the event on_note), with the document.
/** @type {import('livelycouch/worker').Handler<import('livelycouch/worker').ChangesMessage>} */
module.exports = async (msg, ctx) => {
  const doc = msg.change.doc;
  if (!doc || msg.change.deleted) return { skipped: msg.change.id };
  const words = String(doc.text ?? '').split(/\s+/).filter(Boolean).length;
  ctx.log(`note ${doc._id} has ${words} words`);
  return { id: doc._id, words };
};
