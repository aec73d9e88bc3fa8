/**
 * What an activation passes before it starts: events that are not public are authorised,
 * and a durable event's HTTP trigger is stored in the journal (./durable.ts) first, without
 * its credentials; after a crash it comes back from there as a trigger again.
 */
import type { HttpRequestPart } from '../shared/message.ts';
import { kSecretHeaders } from '../shared/credentials.ts';
import type { EventDef, EventMatch } from '../events/model.ts';
import type { EventCatalog } from './event-catalog.ts';
import type { DurableEntry } from './durable-store.ts';
import type { FireInput } from './firing-types.ts';
import { kAnyTrigger } from './firing-match.ts';

/** Whether any matched event must be authorised or stored before it starts (most need neither). */
export function needsGating(matches: EventMatch[]): boolean {
  for (let i = 0; i < matches.length; i++) {
    const event = matches[i]!.event;
    if (event.auth !== 'public' || event.durable) return true;
  }
  return false;
}

/** Throws LC_UNAUTHORIZED / LC_FORBIDDEN for the first event the request may not fire. */
export async function authorizeMatches(authorize: (event: EventDef, headers: HttpRequestPart['headers']) => Promise<void>, matches: EventMatch[], headers: HttpRequestPart['headers']): Promise<void> {
  for (const m of matches) if (m.event.auth !== 'public') await authorize(m.event, headers);
}

export function isDurable(input: FireInput, matches: EventMatch[]): boolean {
  return input.trigger === 'http' && matches.some((m) => m.event.durable);
}

/** What a durable activation needs to run again: no credentials (it was authorised on accept). */
export function durableEntry(activation: string, input: FireInput, matches: EventMatch[]): DurableEntry {
  const entry: DurableEntry = {
    activation, method: input.method, path: input.path, params: input.params,
    events: matches.map((m) => ({ id: m.event.id, bindings: m.bindings })),
  };
  if (input.request) {
    const headers = { ...input.request.headers };
    for (const h of kSecretHeaders) delete headers[h];
    entry.request = { query: input.request.query, headers, body: input.request.body };
  }
  return entry;
}

/** A stored entry as a trigger again, with its events as they are now (none: nothing to run). */
export function recoveredTrigger(catalog: EventCatalog, entry: DurableEntry): { input: FireInput; matches: EventMatch[] } | undefined {
  const matches: EventMatch[] = [];
  for (const e of entry.events) {
    const event = catalog.get(e.id);
    if (event && !event.disabled) matches.push({ event, trigger: kAnyTrigger, bindings: e.bindings });
  }
  if (matches.length === 0) return undefined;
  const input: FireInput = { trigger: 'http', method: entry.method, path: entry.path, params: entry.params, depth: 0 };
  if (entry.request) input.request = entry.request;
  return { input, matches };
}
