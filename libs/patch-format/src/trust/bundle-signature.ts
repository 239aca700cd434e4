import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InvalidManifestError, type PatchManifest, validateManifest } from '../manifest';
import type { SafetyVerdict } from '../verdict';
import { approvalMessage, signApproval, type SigningKey } from './signing';
import {
  BUNDLE_DIGEST_VERSION,
  BundleLayoutError,
  type BundleSnapshot,
  snapshotBundle,
} from './bundle-digest';
import { BundleRefusal } from './refusal';
import { describeTrust, type TrustStore, verifyWithTrustStore } from './trust-store';

/** The signature file next to verdict.json (docs/bundle-signing.md). */
export const SIGNATURE_FILE = 'signature.json';

/**
 * `signature.json`: an Ed25519 signature over `approvalMessage({patchId, bundleSha256: the
 * directory digest, fromBuildId, toBuildId})` — the message the checker service signs for
 * tarballs. Everything but `keyId` and `signature` restates what was signed, for people and for
 * saying which file changed; the verifier recomputes all of it from the bundle itself.
 */
export interface BundleSignature {
  format: 1;
  algorithm: 'ed25519';
  digest: typeof BUNDLE_DIGEST_VERSION;
  keyId: string;
  signature: string;
  patchId: string;
  program: string;
  fromBuildId: string;
  toBuildId: string;
  bundleDigest: string;
  files: { path: string; sha256: string }[];
  signedAt: string;
}

/** verdict.json as `dsu check` writes it. */
export interface StoredVerdict extends SafetyVerdict {
  patchId: string;
  checkedAt?: string;
}

function manifestOf(snap: BundleSnapshot): PatchManifest {
  try {
    return validateManifest(
      JSON.parse((snap.file('manifest.json') as Buffer).toString('utf8')),
      snap.file('patch.so') as Buffer,
    );
  } catch (err) {
    const altered = err instanceof InvalidManifestError && /altered/.test(err.message);
    throw new BundleRefusal(altered ? 'altered' : 'invalid-bundle', `${snap.dir}: ${(err as Error).message}`);
  }
}

function snapshot(dir: string): BundleSnapshot {
  try {
    return snapshotBundle(dir, { requireVerdict: false });
  } catch (err) {
    if (err instanceof BundleLayoutError) throw new BundleRefusal('invalid-bundle', err.message);
    throw err;
  }
}

/**
 * Signs a checked bundle directory (its verdict.json must say approved) with `key` and writes
 * signature.json. Call after verdict.json is written: the verdict is part of what is signed.
 */
export function signBundleDir(dir: string, key: SigningKey): BundleSignature {
  const snap = snapshot(dir);
  const manifest = manifestOf(snap);
  const verdictBytes = snap.file('verdict.json');
  const verdict = verdictBytes ? (JSON.parse(verdictBytes.toString('utf8')) as StoredVerdict) : null;
  if (verdict?.verdict !== 'approved' || verdict.patchId !== manifest.patchId)
    throw new Error(`${dir}: only a bundle whose verdict.json approves patch ${manifest.patchId} is signed`);
  const signed = {
    patchId: manifest.patchId,
    fromBuildId: manifest.from.buildId,
    toBuildId: manifest.to.buildId,
  };
  const sig: BundleSignature = {
    format: 1,
    algorithm: 'ed25519',
    digest: BUNDLE_DIGEST_VERSION,
    keyId: key.keyId,
    signature: signApproval(key, approvalMessage({ ...signed, bundleSha256: snap.digest })),
    ...signed,
    program: manifest.program,
    bundleDigest: snap.digest,
    files: snap.files.map((f) => ({ path: f.path, sha256: f.sha256 })),
    signedAt: new Date().toISOString(),
  };
  // written aside and renamed, so a reader never sees half a signature
  const tmp = join(dir, `.${SIGNATURE_FILE}.${process.pid}.tmp`);
  writeFileSync(tmp, JSON.stringify(sig, null, 2) + '\n');
  renameSync(tmp, join(dir, SIGNATURE_FILE));
  return sig;
}

/** Removes a signature that no longer applies (the bundle was checked again and rejected). */
export function unsignBundleDir(dir: string): void {
  rmSync(join(dir, SIGNATURE_FILE), { force: true });
}

/** A bundle `dsu apply` may stage: the manifest as verified, and how its signature was judged. */
export interface AcceptedBundle {
  manifest: PatchManifest;
  soPath: string;
  verdict: StoredVerdict | null;
  signature: { verified: boolean; keyId: string | null; keyName?: string; allowUnsigned: boolean };
  /** Loud notes for the user: what was not verified and why it was applied anyway. */
  warnings: string[];
}

function readSignature(dir: string): BundleSignature | null {
  let text: string;
  try {
    text = readFileSync(join(dir, SIGNATURE_FILE), 'utf8');
  } catch {
    return null;
  }
  try {
    return JSON.parse(text) as BundleSignature;
  } catch {
    throw new BundleRefusal(
      'bad-signature',
      `${join(dir, SIGNATURE_FILE)} is not JSON; run 'dsu check ${dir}' again`,
    );
  }
}

function changedFiles(sig: BundleSignature, snap: BundleSnapshot): string[] {
  const was = new Map((Array.isArray(sig.files) ? sig.files : []).map((f) => [f.path, f.sha256]));
  const now = new Map(snap.files.map((f) => [f.path, f.sha256]));
  const paths = [...new Set([...was.keys(), ...now.keys()])].sort();
  return paths.filter((p) => was.get(p) !== now.get(p));
}

function verdictOf(snap: BundleSnapshot, manifest: PatchManifest): StoredVerdict | null {
  const bytes = snap.file('verdict.json');
  if (!bytes) return null;
  let v: StoredVerdict;
  try {
    v = JSON.parse(bytes.toString('utf8')) as StoredVerdict;
  } catch {
    throw new BundleRefusal(
      'invalid-bundle',
      `${snap.dir}/verdict.json is not JSON; run 'dsu check ${snap.dir}' again`,
    );
  }
  if (v.patchId !== manifest.patchId)
    throw new BundleRefusal(
      'stale-verdict',
      `verdict.json is for patch ${String(v.patchId).slice(0, 16)}, not this bundle's ${manifest.patchId.slice(0, 16)}: the bundle changed after it was checked; run 'dsu check ${snap.dir}' again`,
    );
  if (v.verdict !== 'approved') {
    const errors = (v.findings ?? [])
      .filter((f) => f.severity === 'error')
      .map((f) => `${f.rule}: ${f.message}`);
    throw new BundleRefusal(
      'rejected',
      `dsu check rejected patch ${manifest.patchId.slice(0, 16)}${errors.length ? ` (${errors.join('; ')})` : ''}; a rejected patch is never applied`,
    );
  }
  return v;
}

/**
 * Decides whether a bundle directory may be applied: readable and unaltered (patch.so matches the
 * manifest), checked and approved, and signed by a trusted key over its current digest. With
 * `allowUnsigned` (local development) a missing verdict or signature, or one that does not
 * verify, becomes a warning; a rejected or stale verdict is refused regardless.
 * Throws BundleRefusal with the reason.
 */
export function acceptBundleDir(
  dir: string,
  store: TrustStore,
  opts: { allowUnsigned: boolean },
): AcceptedBundle {
  const snap = snapshot(dir);
  const manifest = manifestOf(snap);
  const verdict = verdictOf(snap, manifest);
  const warnings: string[] = [];
  const skip = (why: string) => {
    warnings.push(`${why}; applied anyway because of --allow-unsigned (local development only)`);
    return { manifest, soPath: join(resolve(dir), 'patch.so'), verdict, warnings };
  };
  const unsigned = { verified: false, keyId: null, allowUnsigned: opts.allowUnsigned };
  if (!verdict) {
    if (opts.allowUnsigned)
      return {
        ...skip('the bundle was never checked (no verdict.json), so it is not signed'),
        signature: unsigned,
      };
    throw new BundleRefusal(
      'not-checked',
      `${dir} was never checked (no verdict.json); run 'dsu check ${dir}', which signs an approved bundle`,
    );
  }
  const sig = readSignature(dir);
  if (!sig) {
    if (opts.allowUnsigned)
      return { ...skip('the bundle is not signed (no signature.json)'), signature: unsigned };
    throw new BundleRefusal(
      'unsigned',
      `${dir} is not signed (no ${SIGNATURE_FILE}); 'dsu check ${dir}' signs an approved bundle with the local key (or pass --allow-unsigned for local development)`,
    );
  }
  const msg = approvalMessage({
    patchId: manifest.patchId,
    bundleSha256: snap.digest,
    fromBuildId: manifest.from.buildId,
    toBuildId: manifest.to.buildId,
  });
  const by = typeof sig.signature === 'string' ? verifyWithTrustStore(store, msg, sig.signature) : null;
  if (by)
    return {
      manifest,
      soPath: join(resolve(dir), 'patch.so'),
      verdict,
      signature: {
        verified: true,
        keyId: by.keyId,
        ...(by.name ? { keyName: by.name } : {}),
        allowUnsigned: opts.allowUnsigned,
      },
      warnings,
    };
  const refusal = whyNotVerified(dir, sig, snap, store);
  if (opts.allowUnsigned)
    return {
      ...skip(`the signature does not verify: ${refusal.message}`),
      signature: { ...unsigned, keyId: sig.keyId ?? null },
    };
  throw refusal;
}

function whyNotVerified(
  dir: string,
  sig: BundleSignature,
  snap: BundleSnapshot,
  store: TrustStore,
): BundleRefusal {
  if (sig.bundleDigest !== snap.digest) {
    const changed = changedFiles(sig, snap);
    return new BundleRefusal(
      'altered',
      `${dir} changed after it was signed (${changed.length ? changed.join(', ') : 'its content digest differs'}); the signature no longer covers it. If the change is yours, run 'dsu check ${dir}' again`,
    );
  }
  if (!store.keys.some((k) => k.keyId === sig.keyId))
    return new BundleRefusal(
      'untrusted-key',
      `${dir} is signed by key ${sig.keyId}, which is not trusted (${describeTrust(store)})`,
    );
  return new BundleRefusal(
    'bad-signature',
    `the signature in ${join(dir, SIGNATURE_FILE)} does not verify with key ${sig.keyId}: the bundle or its signature was altered; run 'dsu check ${dir}' again`,
  );
}
