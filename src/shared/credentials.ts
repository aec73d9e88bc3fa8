/**
 * Credentials in the environment. The runtime reads them once (COUCHDB_URL, LIVELY_USER, …) and
 * then removes them from its own `process.env`, so nothing it starts later (pool threads, the
 * embedded store, a worker process given `process.env` by mistake) inherits them, and thread
 * workers reading the real `process.env` find nothing.
 */

/**
 * Request headers that carry the caller's credentials: never stored (activation records, the
 * durable journal), since a rerun or a recovery is authorised on its own, not by replayed credentials.
 */
export const kSecretHeaders: readonly string[] = Object.freeze(['authorization', 'proxy-authorization', 'cookie']);

/**
 * Variables that hold credentials: COUCHDB_URL, LIVELY_* ones named for a user, password, secret
 * or token, and any whose value is a URL with a password in it.
 */
export function isCredentialVar(name: string, value?: string): boolean {
  if (name === 'COUCHDB_URL') return true;
  if (/^LIVELY_/.test(name) && /(USER|PASSWORD|SECRET|TOKEN|CREDENTIAL)/.test(name)) return true;
  return value !== undefined && /:\/\/[^/\s:@]*:[^@\s/]+@/.test(value);
}

/** A copy of `env` without credentials. */
export function withoutCredentials(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && !isCredentialVar(k, v)) out[k] = v;
  return out;
}

/** Deletes the credential variables from `env` (the runtime's own `process.env` by default); their names. */
export function removeCredentials(env: NodeJS.ProcessEnv = process.env): string[] {
  const removed: string[] = [];
  for (const k of Object.keys(env)) {
    if (isCredentialVar(k, env[k])) {
      delete env[k];
      removed.push(k);
    }
  }
  return removed;
}
