/**
 * Activation records live in one database per UTC day, `<prefix>logs-YYYYMMDD` (see
 * store/days.ts): retention drops whole days.
 */
import type { ServerScope } from '../store/couch.ts';
import { DayDbs, type DayDb } from '../store/days.ts';

export { dayStart, dropDayDb, ensureDayDb, type DayDb } from '../store/days.ts';

const families = new Map<string, DayDbs>();
/** The activation-record days of a database prefix. */
function recordDays(prefix: string): DayDbs {
  let f = families.get(prefix);
  if (!f) { f = new DayDbs(`${prefix}logs-`); families.set(prefix, f); }
  return f;
}

/** `<prefix>logs-YYYYMMDD` for the UTC day of `t`. */
export const dayDbName = (prefix: string, t: number): string => recordDays(prefix).name(t);
export const listDayDbs = (server: ServerScope, prefix: string): Promise<DayDb[]> => recordDays(prefix).list(server);
