import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Where the signing key and the trust store live; the checker service, `dsu check`, `dsu apply`,
 * `dsu keys` and the applier service all take them from here, so they agree.
 */
export interface KeyPaths {
  /** The Ed25519 private key that signs approvals (`DSU_SIGNING_KEY`, default `$DSU_HOME/keys/checker-ed25519.pem`). */
  signingKey: string;
  /** Its public key, written next to it on first use (`<signing key without .pem>.pub.pem`). */
  signingPublicKey: string;
  /**
   * `DSU_TRUSTED_KEY` as given: files (one or more PEM public keys each) or directories (every
   * `*.pem`), separated by ',' or ':'. Unset: the local signing key's public key is trusted.
   */
  trustedKeys?: string;
  /** Keys added with `dsu keys add` (`DSU_TRUSTED_KEYS_DIR`, default `$DSU_HOME/keys/trusted`); always trusted. */
  trustedDir: string;
}

/** The key paths from the environment (DESIGN.md §10: every setting has a default and a variable). */
export function keyPathsFromEnv(env: NodeJS.ProcessEnv = process.env): KeyPaths {
  // the default of @dsu/persistence's dsuHome(); not imported, so that dsu apply stays light
  const home = env.DSU_HOME ?? join(homedir(), '.dsu');
  const signingKey = env.DSU_SIGNING_KEY || join(home, 'keys', 'checker-ed25519.pem');
  return {
    signingKey,
    signingPublicKey: `${signingKey.replace(/\.pem$/, '')}.pub.pem`,
    trustedKeys: env.DSU_TRUSTED_KEY || undefined,
    trustedDir: env.DSU_TRUSTED_KEYS_DIR || join(home, 'keys', 'trusted'),
  };
}
