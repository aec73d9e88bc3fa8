/**
 * Where Firing sends each finished activation's record (once per activation): the
 * activation log that stores it and the metrics that count it. `teeActivations` hands a
 * record to several sinks so that a fault in one never keeps it from the others, nor
 * reaches Firing. `redactingActivations` scrubs credentials out of what workers said (their
 * log lines and error messages) before a record is stored, so a worker that prints its
 * CouchDB URL does not put a password into the activation records; `redactOutcome` does the
 * same for the outcomes a waiting caller receives.
 */
import type { ActivationRecord } from '../activations/record.ts';
import type { WorkerOutcome } from '../shared/message.ts';
import { describeError } from '../shared/errors.ts';
import { hasSecretValues, redactText, type Logger } from '../shared/logger.ts';

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

/** A copy of a JSON value with every secret value in its strings redacted; the same value when none is there. */
function redactSecretsIn(v: unknown, depth = 0): unknown {
  if (typeof v === 'string') return redactText(v);
  if (!v || typeof v !== 'object' || depth > 64) return v;
  let out: Record<string, unknown> | unknown[] | undefined;
  const entries = Array.isArray(v) ? v.map((x, i) => [i, x] as const) : Object.entries(v as Record<string, unknown>);
  for (const [k, x] of entries) {
    const r = redactSecretsIn(x, depth + 1);
    if (r !== x) {
      out ??= Array.isArray(v) ? v.slice() : { ...(v as Record<string, unknown>) };
      (out as Record<string | number, unknown>)[k] = r;
    }
  }
  return out ?? v;
}

/** The outcome with its log lines, error message and (when secrets are set) result redacted; the same object when nothing changed. */
export function redactOutcome(w: WorkerOutcome): WorkerOutcome {
  let out = w;
  if (w.result !== undefined && hasSecretValues()) {
    const result = redactSecretsIn(w.result);
    if (result !== w.result) out = { ...out, result };
  }
  if (w.error) {
    const message = redactText(w.error.message);
    const stack = w.error.stack === undefined ? undefined : redactText(w.error.stack);
    if (message !== w.error.message || stack !== w.error.stack) out = { ...out, error: { ...w.error, message, ...(stack !== undefined ? { stack } : {}) } };
  }
  for (let i = 0; i < w.logs.length; i++) {
    const line = w.logs[i]!;
    const msg = redactText(line.msg);
    if (msg !== line.msg) {
      if (out.logs === w.logs) out = { ...out, logs: w.logs.slice() };
      out.logs[i] = { ...line, msg };
    }
  }
  return out;
}

export function redactingActivations(inner: ActivationSink): ActivationSink {
  return {
    record(rec) {
      let workers = rec.workers;
      for (let i = 0; i < rec.workers.length; i++) {
        const w = rec.workers[i]!;
        // The common case, an ok outcome without logs, costs one test.
        if (w.error === undefined && w.logs.length === 0 && (w.result === undefined || !hasSecretValues())) continue;
        const r = redactOutcome(w);
        if (r !== w) {
          if (workers === rec.workers) workers = rec.workers.slice();
          workers[i] = r;
        }
      }
      inner.record(workers === rec.workers ? rec : { ...rec, workers });
    },
  };
}
