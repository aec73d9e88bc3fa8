/**
 * Databases of one kind, one per UTC day: `<base>YYYYMMDD` (activation records in
 * `<prefix>logs-YYYYMMDD`, the durable journal in `<prefix>durable_YYYYMMDD`). Retention then
 * drops whole databases instead of deleting documents, so deletions leave no tombstones in a
 * database that lives on. Day databases are found through `_all_dbs` (the runtime is admin;
 * CouchDB 3 answers only admins there), narrowed to the base by key range where the store
 * supports it and by name in any case. They hold what workers were sent and said, so they are
 * created readable and writable by admins only.
 */
import { LivelyError } from '../shared/errors.ts';
import { kDatabaseNamePattern } from '../shared/db-name.ts';
import { dbNames, ensureDb, statusOf, type ServerScope } from './couch.ts';
import { kAdminOnlySecurity as kDaySecurity } from './init.ts';

export const kDayMs = 86_400_000;

export interface DayDb {
  name: string;
  /** the day's first ms (UTC midnight). */
  start: number;
}

export function dayStart(t: number): number {
  return t - (((t % kDayMs) + kDayMs) % kDayMs);
}

/** Readable and writable by admins only. */
export { kAdminOnlySecurity as kDaySecurity } from './init.ts';

export class DayDbs {
  /** `base` is the name up to the date, e.g. `lively_logs-`; one that cannot name a database fails now. */
  constructor(readonly base: string) {
    this.name(0);
  }

  /** the last day named: writers ask for the same day many times a second. */
  private last = { start: NaN, name: '' };

  /** `<base>YYYYMMDD` for the UTC day of `t`. */
  name(t: number): string {
    if (t >= this.last.start && t < this.last.start + kDayMs) return this.last.name;
    const iso = new Date(t).toISOString();
    const name = `${this.base}${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}`;
    if (!kDatabaseNamePattern.test(name)) throw new LivelyError('LC_CONFIG', `options.dbPrefix gives an invalid CouchDB database name: ${JSON.stringify(name)}`);
    this.last = { start: dayStart(t), name };
    return name;
  }

  /** The day of a database name of this kind, or undefined for any other name. */
  parse(name: string): DayDb | undefined {
    if (!name.startsWith(this.base) || name.length !== this.base.length + 8) return undefined;
    const d = name.slice(this.base.length);
    if (!/^\d{8}$/.test(d)) return undefined;
    const start = Date.parse(`${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}T00:00:00.000Z`);
    return Number.isFinite(start) ? { name, start } : undefined;
  }

  /** The day databases that exist, newest first. */
  async list(server: ServerScope): Promise<DayDb[]> {
    const names = await dbNames(server, this.base, `${this.base}\ufff0`);
    const days: DayDb[] = [];
    for (const name of names) {
      const day = this.parse(name);
      if (day) days.push(day);
    }
    return days.sort((a, b) => b.start - a.start);
  }
}

/** Creates a day database unless it exists, and (again) restricts it to admins. */
export async function ensureDayDb(server: ServerScope, name: string): Promise<void> {
  await ensureDb(server, name);
  await server.request({ db: name, path: '_security', method: 'PUT', body: kDaySecurity });
}

/** Drops a day database; false when it was gone already. */
export async function dropDayDb(server: ServerScope, name: string): Promise<boolean> {
  try {
    await server.db.destroy(name);
    return true;
  } catch (err) {
    if (statusOf(err) === 404) return false;
    throw err;
  }
}
