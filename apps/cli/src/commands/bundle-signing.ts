import * as trust from '@dsu/patch-format';
import type { Output } from '../output';

/**
 * After `dsu check` wrote verdict.json: signs an approved bundle with the local key (the
 * checker service's key files under $DSU_HOME/keys, made on first use) and returns what was
 * signed; removes a signature left from an earlier approval when the verdict is now rejected.
 */
export async function signCheckedBundle(
  dir: string,
  approved: boolean,
  out: Output,
): Promise<{ keyId: string; bundleDigest: string; file: string } | null> {
  if (!approved) {
    trust.unsignBundleDir(dir);
    return null;
  }
  const paths = trust.keyPathsFromEnv();
  const key = trust.loadOrCreateSigningKey(paths.signingKey, paths.signingPublicKey);
  const sig = trust.signBundleDir(dir, key);
  out.log(
    `signed with key ${sig.keyId} (${paths.signingPublicKey}); digest ${sig.bundleDigest.slice(0, 16)}`,
  );
  return { keyId: sig.keyId, bundleDigest: sig.bundleDigest, file: trust.SIGNATURE_FILE };
}
