/**
 * The Node.js lines LivelyCouch supports (package.json `engines` says the same; a spec holds
 * them equal). Node 20 is past its end of life and stays while CI runs on it.
 */
export const kNodeLines: Readonly<Record<number, { minimum: string }>> = {
  20: { minimum: '20.19.0' },
  22: { minimum: '22.0.0' },
  24: { minimum: '24.0.0' },
  26: { minimum: '26.0.0' },
};

const parts = (v: string): number[] => v.replace(/^v/, '').split('.').map((n) => Number.parseInt(n, 10) || 0);

/** The `engines.node` range for the lines above. */
export function enginesRange(): string {
  return Object.values(kNodeLines).map((l) => `^${l.minimum}`).join(' || ');
}

/** One line saying `version` is not supported, or undefined when it is. */
export function unsupportedNodeNotice(version: string): string | undefined {
  const [major = 0, minor = 0, patch = 0] = parts(version);
  const line = kNodeLines[major];
  if (line) {
    const [, lMinor = 0, lPatch = 0] = parts(line.minimum);
    if (minor > lMinor || (minor === lMinor && patch >= lPatch)) return undefined;
  }
  return `Node ${version} is not supported by LivelyCouch (engines: ${enginesRange()}); it may not work, and isolate workers need a supported line`;
}
