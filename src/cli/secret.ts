/**
 * `livelycouch secret set NAME | list | rm NAME`: the runtime's secrets through its admin API
 * (/_lively/secrets). `set` reads the value from stdin when it is not a terminal (a pipe, a
 * file), else prompts for it without echo; the value is never an argument (it would show in
 * `ps` and the shell's history) and never printed.
 */
import { LivelyError } from '../shared/errors.ts';
import { UsageError } from './args.ts';
import { call, replyError, type Target } from './client.ts';

/** All of stdin (one trailing newline dropped), or a line typed at a prompt that does not echo. */
export async function readSecretValue(name: string, input: NodeJS.ReadStream = process.stdin, prompt: (s: string) => void = (s) => process.stderr.write(s)): Promise<string> {
  if (!input.isTTY) {
    const chunks: Buffer[] = [];
    for await (const c of input) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(String(c)));
    return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  }
  prompt(`value for ${name}: `);
  input.setRawMode(true);
  input.resume();
  return new Promise((resolve, reject) => {
    let value = '';
    const done = (err?: Error) => {
      input.setRawMode(false);
      input.pause();
      input.off('data', onData);
      prompt('\n');
      if (err) reject(err); else resolve(value);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new LivelyError('LC_BAD_SECRET', 'cancelled'));
        if (ch === '\u007f') value = value.slice(0, -1);
        else value += ch;
      }
    };
    input.on('data', onData);
  });
}

function check(status: number, reply: Awaited<ReturnType<typeof call>>): void {
  if (reply.status === 401) throw new LivelyError('LC_UNAUTHORIZED', `${replyError(reply)} (give admin credentials with --user NAME:PASSWORD or LIVELY_USER)`);
  if (reply.status !== status) throw new LivelyError('LC_BAD_REQUEST', replyError(reply));
}

export async function secretCommand(target: Target, args: string[], out: (s: string) => void, json: boolean, readValue = readSecretValue): Promise<void> {
  const [action, name] = args;
  const path = (n: string) => `/_lively/secrets/${encodeURIComponent(n)}`;
  switch (action) {
    case 'list': {
      if (name !== undefined) throw new UsageError(`"secret list" takes no name`);
      const reply = await call(target, 'GET', '/_lively/secrets');
      check(200, reply);
      const names = (reply.body as { secrets: string[] }).secrets;
      out(json ? `${JSON.stringify(names)}\n` : names.map((n) => `${n}\n`).join(''));
      return;
    }
    case 'set': {
      if (name === undefined) throw new UsageError('missing NAME: livelycouch secret set NAME (the value comes from stdin or a prompt)');
      const value = await readValue(name);
      if (value === '') throw new LivelyError('LC_BAD_SECRET', `secret "${name}": the value is empty`);
      const reply = await call(target, 'PUT', path(name), { body: JSON.stringify({ value }), headers: { 'content-type': 'application/json' } });
      check(201, reply);
      out(json ? `${JSON.stringify(reply.body)}\n` : `${(reply.body as { created: boolean }).created ? 'set' : 'changed'} secret ${name}\n`);
      return;
    }
    case 'rm': {
      if (name === undefined) throw new UsageError('missing NAME: livelycouch secret rm NAME');
      const reply = await call(target, 'DELETE', path(name));
      check(200, reply);
      out(json ? `${JSON.stringify(reply.body)}\n` : `removed secret ${name}\n`);
      return;
    }
    default:
      throw new UsageError(`secret takes set NAME, list or rm NAME${action ? `, not "${action}"` : ''}`);
  }
}
