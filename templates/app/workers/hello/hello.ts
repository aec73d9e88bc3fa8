// An HTTP endpoint in TypeScript: GET /_events/hello/<name>
import type { Handler, HttpMessage } from 'livelycouch/worker';

const hello: Handler<HttpMessage> = async (msg, ctx) => {
  const name = String(msg.parameters.name ?? 'world');
  ctx.log(`greeting ${name}`);
  return { text: `${String(msg.arguments.greeting)}, ${name}!` };
};

export default hello;
