/** Polls `check` until it returns true, failing after `ms`; specs wait on the store and on processes this way. */
export async function eventually(check: () => Promise<boolean> | boolean, ms = 5_000, what = 'condition'): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
