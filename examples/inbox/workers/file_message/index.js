// HTTP trigger, node worker: files a posted message as a document of the inbox database.
// `db` is an argument of the worker document, so a request cannot point it elsewhere.
const { cleanText } = require('./text.js');

module.exports = async (msg, ctx) => {
  const { db, from } = msg.parameters;
  const text = cleanText(msg.parameters.text);
  if (!text) throw new Error('post a JSON body such as {"from": "ada", "text": "hello"}');
  const doc = { type: 'message', from: String(from || 'anonymous'), text, received: new Date().toISOString() };
  const res = await ctx.couch.use(db).insert(doc);
  ctx.log(`filed ${res.id} from ${doc.from}`);
  return { id: res.id, db };
};
