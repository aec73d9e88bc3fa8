/**
 * JSON that every later step can walk. A value nested tens of thousands deep parses, but
 * JSON.stringify, structured clone and every other recursive walk overflow the stack on it:
 * so what comes in (a trigger's body, a worker's command line) is refused past a depth, and a
 * message is turned into its JSON line where a failure can be answered.
 */
import { LivelyError, describeError } from './errors.ts';
import type { WorkerMessage } from './message.ts';

/** Deeper than this, a request body is refused and a worker's output line is not a command. */
export const kMaxJsonDepth = 512;
/** How every refusal past that depth says why. */
export const kTooDeep = `nested deeper than ${kMaxJsonDepth} levels`;

/** Whether the JSON text nests arrays and objects deeper than `max`: one pass over the text, counting brackets outside strings, cheaper than the parse it guards. */
export function nestedDeeperThan(text: string, max = kMaxJsonDepth): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

/**
 * A message as the one JSON line a worker receives. Throws LC_WORKER_ERROR, for that message
 * alone, when it has none: a changes trigger's document nested too deep for the stack, say.
 */
export function messageLine(message: WorkerMessage): string {
  try {
    return JSON.stringify(message);
  } catch (err) {
    throw new LivelyError('LC_WORKER_ERROR', `the message cannot be sent to the worker as JSON: ${describeError(err)}`);
  }
}
