/**
 * One database of activation records per UTC day: `<prefix>logs-YYYYMMDD`. Retention then
 * drops whole databases instead of deleting documents, so deletions leave no tombstones in
 * a database that lives on. The day databases are found through `_all_dbs` (the runtime is
 * admin; CouchDB 3 answers only admins there), narrowed to the prefix by key range where the
 * store supports it and by name in any case.
 */
import type { ServerScope } from 'nano';
import { LivelyError } from '../shared/errors.ts';
import { ensureDb, statusOf } from '../store/couch.ts';
import { kDayMs } from './batch.ts';

const kDbName = /^[a-z][a-z0-9_$()+/-]*$/;

export interface DayDb {
  name: string;
  /** the day's first ms (UTC midnight). */
  start: number;
}

/** `<prefix>logs-YYYYMMDD` for the UTC day of `t`. */
export function dayDbName(prefix: string, t: number): string {
  const iso = new Date(t).toISOString();
  const name = `${prefix}logs-${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}`;
  if (!kDbName.test(name)) throw new LivelyError('LC_CONFIG', `options.dbPrefix gives an invalid CouchDB database name: ${JSON.stringify(name)}`);
  return name;
}

export function dayStart(t: number): number {
  return t - (((t % kDayMs) + kDayMs) % kDayMs);
}

/** The day of a day database name with this prefix, or undefined for any other name. */
export function parseDayDbName(prefix: string, name: string): DayDb | undefined {
  const base = `${prefix}logs-`;
  if (!name.startsWith(base) || name.length !== base.length + 8) return undefined;
  const d = name.slice(base.length);
  if (!/^\d{8}$/.test(d)) return undefined;
  const start = Date.parse(`${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}T00:00:00.000Z`);
  return Number.isFinite(start) ? { name, start } : undefined;
}

/** The day databases that exist, newest first. */
export async function listDayDbs(server: ServerScope, prefix: string): Promise<DayDb[]> {
  const base = `${prefix}logs-`;
  const names = await server.request({ path: '_all_dbs', qs: { start_key: base, end_key: `${base}\ufff0` } }) as unknown as string[];
  const days: DayDb[] = [];
  for (const name of names) {
    const day = parseDayDbName(prefix, name);
    if (day) days.push(day);
  }
  return days.sort((a, b) => b.start - a.start);
}

/** Readable and writable by admins only: records hold results, logs and request inputs. */
export const kDaySecurity = Object.freeze({
  admins: { names: [], roles: ['_admin'] },
  members: { names: [], roles: ['_admin'] },
});

/** Creates the day database unless it exists and (again) restricts it to admins. */
export async function ensureDayDb(server: ServerScope, name: string): Promise<void> {
  await ensureDb(server, name);
  await server.request({ db: name, path: '_security', method: 'PUT', body: kDaySecurity });
}

export async function dropDayDb(server: ServerScope, name: string): Promise<boolean> {
  try {
    await server.db.destroy(name);
    return true;
  } catch (err) {
    if (statusOf(err) === 404) return false;
    throw err;
  }
}
