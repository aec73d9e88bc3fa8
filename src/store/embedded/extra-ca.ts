/**
 * NODE_EXTRA_CA_CERTS makes node read and parse the file it names as it starts, before any code
 * runs: about 35 ms on a machine whose variable names the whole system CA bundle, as many
 * containers and CI images set it. The embedded store's child opens TLS connections only to
 * replicate with a CouchDB over https, which most stores never do. So the supervisor hands
 * the child the file under a name of its own (`storeCaEnv`, ./contract.ts), and the child adds the file's
 * certificates to those node's global https agent trusts, read at its first connection
 * (`trustExtraCa`). PouchDB's HTTP client (node-fetch) connects through that agent, so a
 * replication trusts what it trusted with the variable.
 *
 * Left alone when node is told to trust another CA store (`--use-openssl-ca`, `--use-system-ca`):
 * the agent's `ca` would replace that store with node's bundled one.
 */
import fs from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';

/**
 * Makes the global https agent trust node's bundled CAs and those in `file`, read at its first
 * connection. A file that cannot be read is said once through `warn` (node says the same of
 * NODE_EXTRA_CA_CERTS) and the bundled CAs stay.
 */
export function trustExtraCa(file: string, warn: (message: string) => void): void {
  let ca: string[] | undefined;
  Object.defineProperty(https.globalAgent.options, 'ca', {
    configurable: true,
    enumerable: true,
    get: () => {
      if (!ca) {
        ca = [...tls.rootCertificates];
        try {
          ca.push(fs.readFileSync(file, 'utf8'));
        } catch (err) {
          warn(`ignoring extra certificates file ${file}: ${(err as Error).message}`);
        }
      }
      return ca;
    },
  });
}
