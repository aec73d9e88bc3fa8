/** How long a stopping part waits for its work in flight before it gives up on it. */
export const kStopWaitMs = 2_000;

/**
 * Waiting for work in flight while stopping, without waiting for ever on a store that stopped
 * answering: resolves when every promise has settled (fulfilled or rejected), or after `ms`,
 * whichever comes first. Its timer is cleared either way, so it never holds the process open.
 */
export function settledWithin(promises: ReadonlyArray<Promise<unknown> | undefined>, ms: number): Promise<void> {
  const waiting = promises.filter((p): p is Promise<unknown> => p !== undefined);
  if (waiting.length === 0) return Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<void>((resolve) => { timer = setTimeout(resolve, Math.max(0, ms)); });
  return Promise.race([Promise.allSettled(waiting), bound]).then(() => clearTimeout(timer));
}
