/**
 * State in the store that no runtime could have written: a tick claimed far in the future, a
 * changes checkpoint the database never gave, a lease taken from a holder whose period had not
 * run out. Each is logged as an error, counted and kept (the last few) for `/_lively/status`,
 * and the code that found it recovers instead of stopping.
 */
import type { Logger } from '../shared/logger.ts';

export type AnomalyKind = 'future-claim' | 'bad-checkpoint' | 'lease-rewritten';

export interface Anomaly {
  kind: AnomalyKind;
  /** the document concerned. */
  doc: string;
  /** what was found and what was done about it. */
  detail: string;
  at: string;
}

const kKept = 20;

export class Anomalies {
  readonly counts: Record<AnomalyKind, number> = { 'future-claim': 0, 'bad-checkpoint': 0, 'lease-rewritten': 0 };
  readonly recent: Anomaly[] = [];

  constructor(private readonly logger: Logger) {}

  report(kind: AnomalyKind, doc: string, detail: string, fields: Record<string, unknown> = {}): void {
    this.counts[kind]++;
    this.recent.push({ kind, doc, detail, at: new Date().toISOString() });
    if (this.recent.length > kKept) this.recent.shift();
    this.logger.error(`runtime state refused: ${detail}`, { anomaly: kind, doc, ...fields });
  }

  total(): number {
    return Object.values(this.counts).reduce((a, b) => a + b, 0);
  }

  stats(): { total: number; counts: Record<AnomalyKind, number>; recent: Anomaly[] } {
    return { total: this.total(), counts: { ...this.counts }, recent: [...this.recent] };
  }
}
