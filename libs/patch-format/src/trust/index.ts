// The trust side of bundles: Ed25519 approval signatures and the signing key, the canonical
// digest of a bundle directory, the trust store of public keys, signing and verifying bundle
// directories, and the target check before STAGE. Node built-ins only, so `dsu apply` loads fast.
export {
  BUNDLE_DIGEST_VERSION,
  REQUIRED_BUNDLE_FILES,
  BundleLayoutError,
  coveredPaths,
  digestOf,
  snapshotBundle,
  type BundleFile,
  type BundleSnapshot,
} from './bundle-digest';
export { keyPathsFromEnv, type KeyPaths } from './key-paths';
export {
  addTrustedKey,
  describeTrust,
  loadTrustStore,
  publicKeysInPem,
  removeTrustedKey,
  verifyWithTrustStore,
  type TrustedKey,
  type TrustStore,
} from './trust-store';
export { BundleRefusal, type RefusalCode } from './refusal';
export {
  SIGNATURE_FILE,
  acceptBundleDir,
  signBundleDir,
  unsignBundleDir,
  type AcceptedBundle,
  type BundleSignature,
  type StoredVerdict,
} from './bundle-signature';
export { checkBundleTarget, currentBuildOf, type ProcessTarget } from './bundle-target';
export {
  approvalMessage,
  keyIdOf,
  loadOrCreateSigningKey,
  loadTrustedKey,
  signApproval,
  verifyApproval,
  type SigningKey,
} from './signing';
