// Runs every minute (the event every_minute); concurrency 1 and queue 0: never overlaps itself.
/** @type {import('livelycouch/worker').Handler<import('livelycouch/worker').ScheduleMessage>} */
module.exports = async (msg, ctx) => {
  ctx.log(`tick at ${msg.tick.at}`);
  return { at: msg.tick.at };
};
