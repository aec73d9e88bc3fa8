/**
 * Activation ids: unique and time-ordered within a runtime, and carrying the activation's
 * start time, which is how its record is found again (src/activations/reader.ts).
 */
import { randomBytes } from 'node:crypto';

const kBootId = randomBytes(4).toString('hex');
let counter = 0;
let lastMs = -1;
let lastPrefix = '';

/** No crypto per id: the time part is built once per millisecond. */
export function newActivationId(now = Date.now()): string {
  if (now !== lastMs) { lastMs = now; lastPrefix = `${kBootId}-${now.toString(36)}-`; }
  return lastPrefix + (counter++).toString(36);
}
