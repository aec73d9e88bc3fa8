/**
 * Where Firing sends each finished activation's record (once per activation): the
 * activation log that stores it and the metrics that count it. `teeActivations` hands a
 * record to several sinks so that a fault in one never keeps it from the others, nor
 * reaches Firing.
 */
import type { ActivationRecord } from '../activations/log.ts';
import { describeError } from '../shared/errors.ts';
import type { Logger } from '../shared/log.ts';

export interface ActivationSink {
  record(rec: ActivationRecord): void;
}

export function teeActivations(sinks: readonly ActivationSink[], logger: Logger): ActivationSink {
  return {
    record(rec) {
      for (const s of sinks) {
        try {
          s.record(rec);
        } catch (err) {
          logger.error('an activation record was not taken', { activation: rec.activation, error: describeError(err) });
        }
      }
    },
  };
}
