/**
 * The events database, live: every event document parsed into the matcher, invalid ones
 * kept with their reasons for the status API. Hot reload is the changes feed itself:
 * an edit reaches the matcher as soon as the longpoll returns.
 */
import { parseEventDoc } from '../events/parse.ts';
import { EventMatcher } from '../events/matcher.ts';
import type { EventDef } from '../events/model.ts';

export interface ChangeRow {
  id: string;
  deleted?: boolean;
  doc?: Record<string, unknown>;
}

export class EventCatalog {
  readonly matcher = new EventMatcher();
  private readonly invalidById = new Map<string, string>();
  /** whether any enabled event listens under /lively/ (lifecycle events cost nothing otherwise). */
  hasLifecycleRoutes = false;
  private lifecycleIds = new Set<string>();
  /** told of every event added, edited or removed (changes and schedule triggers follow it). */
  onEvent?: (id: string, event: EventDef | undefined) => void;

  apply(rows: readonly ChangeRow[]): void {
    for (const row of rows) {
      if (row.id.startsWith('_design/')) continue;
      this.invalidById.delete(row.id);
      if (row.deleted || !row.doc) { this.remove(row.id); this.onEvent?.(row.id, undefined); continue; }
      const parsed = parseEventDoc(row.doc);
      if (parsed.ok) {
        this.matcher.upsert(parsed.event);
        this.trackLifecycle(parsed.event);
        this.onEvent?.(row.id, parsed.event);
      } else {
        this.remove(row.id);
        this.invalidById.set(row.id, parsed.reason);
        this.onEvent?.(row.id, undefined);
      }
    }
    this.hasLifecycleRoutes = this.lifecycleIds.size > 0;
  }

  get(id: string): EventDef | undefined {
    return this.matcher.get(id);
  }

  invalid(): Array<{ id: string; reason: string }> {
    return [...this.invalidById].map(([id, reason]) => ({ id, reason }));
  }

  private remove(id: string): void {
    this.matcher.remove(id);
    this.lifecycleIds.delete(id);
  }

  private trackLifecycle(ev: EventDef): void {
    const listens = !ev.disabled && ev.triggers.some((t) => t.kind === 'http' && t.path.startsWith('/lively/'));
    if (listens) this.lifecycleIds.add(ev.id); else this.lifecycleIds.delete(ev.id);
  }
}
