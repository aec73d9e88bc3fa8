/**
 * Whether this code runs from the build in dist/ (scripts/bundle.js defines LIVELYCOUCH_DIST there)
 * or from the TypeScript sources through tsx: child processes and the thread runtime are then
 * started from their built files instead of being compiled again.
 */
import { fileURLToPath } from 'node:url';

declare const LIVELYCOUCH_DIST: boolean | undefined;

/** The folder of the built files when running from them, else undefined. */
export const kDistDir: string | undefined = typeof LIVELYCOUCH_DIST === 'undefined'
  ? undefined
  : fileURLToPath(new URL('../../dist/', import.meta.url));
