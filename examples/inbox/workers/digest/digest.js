// Schedule trigger (every minute) and HTTP, node worker: how many messages the inbox holds.
module.exports = async (msg, ctx) => {
  const { db } = msg.arguments;
  let messages = 0;
  try {
    messages = (await ctx.couch.db.get(db)).doc_count;
  } catch (err) {
    if (err.statusCode !== 404) throw err; // no inbox yet: nothing to count
  }
  ctx.log(`${messages} messages in ${db} (${msg.trigger})`);
  return { db, messages };
};
