import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rewriteManifest, writeTestBundle } from '../../test/bundle-fixture';
import { approvalMessage, loadOrCreateSigningKey, verifyApproval } from './signing';
import { snapshotBundle } from './bundle-digest';
import { acceptBundleDir, signBundleDir, SIGNATURE_FILE } from './bundle-signature';
import { checkBundleTarget } from './bundle-target';
import { keyPathsFromEnv } from './key-paths';
import { BundleRefusal } from './refusal';
import { loadTrustStore } from './trust-store';

const refusalOf = (fn: () => unknown): { code: string; message: string } => {
  try {
    fn();
  } catch (err) {
    if (err instanceof BundleRefusal) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected a refusal');
};

describe('signed bundle directories', () => {
  let home: string;
  let dir: string;
  let paths: ReturnType<typeof keyPathsFromEnv>;
  const strict = { allowUnsigned: false };
  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'dsu-sign-'));
    dir = join(home, 'bundle');
    writeTestBundle(dir);
    paths = keyPathsFromEnv({ DSU_HOME: home });
  });
  afterEach(() => rmSync(home, { recursive: true, force: true }));
  const sign = () => signBundleDir(dir, loadOrCreateSigningKey(paths.signingKey, paths.signingPublicKey));

  it('signs the approval message over the directory digest, which the local key verifies', () => {
    const sig = sign();
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    expect(sig).toMatchObject({
      patchId: manifest.patchId,
      fromBuildId: 'b1',
      toBuildId: 'b2',
      program: 'kv',
    });
    expect(sig.bundleDigest).toBe(snapshotBundle(dir).digest);
    expect(JSON.parse(readFileSync(join(dir, SIGNATURE_FILE), 'utf8'))).toEqual(sig);
    const key = loadOrCreateSigningKey(paths.signingKey, paths.signingPublicKey);
    const msg = approvalMessage({
      patchId: manifest.patchId,
      bundleSha256: sig.bundleDigest,
      fromBuildId: 'b1',
      toBuildId: 'b2',
    });
    expect(verifyApproval(key.publicKey, msg, sig.signature)).toBe(true);
    const ok = acceptBundleDir(dir, loadTrustStore(paths), strict);
    expect(ok).toMatchObject({
      signature: { verified: true, keyId: key.keyId, allowUnsigned: false },
      warnings: [],
    });
    expect(ok.manifest.patchId).toBe(manifest.patchId);
  });

  it('does not sign a rejected bundle', () => {
    writeTestBundle(dir, { verdict: 'rejected' });
    expect(() => sign()).toThrow(/only a bundle whose verdict.json approves/);
  });

  it('refuses unchecked and unsigned bundles unless --allow-unsigned, which says so', () => {
    const store = loadTrustStore(paths);
    expect(refusalOf(() => acceptBundleDir(dir, store, strict))).toMatchObject({
      code: 'unsigned',
      message: expect.stringMatching(/not signed.*dsu check.*--allow-unsigned/),
    });
    const loose = acceptBundleDir(dir, store, { allowUnsigned: true });
    expect(loose.signature).toEqual({ verified: false, keyId: null, allowUnsigned: true });
    expect(loose.warnings).toEqual([
      expect.stringMatching(/not signed.*--allow-unsigned \(local development only\)/),
    ]);
    rmSync(join(dir, 'verdict.json'));
    expect(refusalOf(() => acceptBundleDir(dir, store, strict))).toMatchObject({
      code: 'not-checked',
      message: expect.stringMatching(/never checked.*run 'dsu check/),
    });
    expect(acceptBundleDir(dir, store, { allowUnsigned: true }).warnings).toEqual([
      expect.stringMatching(/never checked/),
    ]);
  });

  it('refuses a rejected or stale verdict even with --allow-unsigned', () => {
    writeTestBundle(dir, { verdict: 'rejected' });
    for (const allowUnsigned of [false, true])
      expect(refusalOf(() => acceptBundleDir(dir, loadTrustStore(paths), { allowUnsigned }))).toMatchObject({
        code: 'rejected',
        message: expect.stringMatching(/dsu check rejected patch .*activeness: handle is always active/),
      });
    writeTestBundle(dir);
    sign();
    // the attacker edits patch.so and recomputes soSha256 and patchId, but leaves the verdict
    rewriteManifest(dir, Buffer.from('evil'), 'b1', null);
    writeFileSync(join(dir, 'patch.so'), 'evil');
    expect(
      refusalOf(() => acceptBundleDir(dir, loadTrustStore(paths), { allowUnsigned: true })),
    ).toMatchObject({ code: 'stale-verdict' });
  });

  it('refuses any altered byte after signing, even with every hash in the manifest and verdict recomputed', () => {
    sign();
    const store = loadTrustStore(paths);
    writeFileSync(join(dir, 'patch.so'), 'evil');
    rewriteManifest(dir, Buffer.from('evil')); // new soSha256, patchId, and a verdict naming the new id
    expect(refusalOf(() => acceptBundleDir(dir, store, strict))).toMatchObject({
      code: 'altered',
      message: expect.stringMatching(/changed after it was signed \(manifest.json, patch.so, verdict.json\)/),
    });
    // patch.so edited without recomputing: the manifest says the bundle was altered
    writeTestBundle(dir);
    sign();
    writeFileSync(join(dir, 'patch.so'), 'evil');
    expect(refusalOf(() => acceptBundleDir(dir, store, strict))).toMatchObject({
      code: 'altered',
      message: expect.stringMatching(/patch.so hashes to/),
    });
    // the verdict's allowed points, the models, the units: all covered
    for (const [file, text] of [
      ['units/main.c.i', 'int main(void) { return 1; }'],
      ['models/to.json', '{}'],
      ['patch.c', '/* other */'],
    ]) {
      writeTestBundle(dir);
      sign();
      writeFileSync(join(dir, file), text);
      expect(refusalOf(() => acceptBundleDir(dir, store, strict))).toMatchObject({
        code: 'altered',
        message: expect.stringContaining(file),
      });
    }
    writeTestBundle(dir);
    sign();
    const v = JSON.parse(readFileSync(join(dir, 'verdict.json'), 'utf8'));
    v.updatePoints.allowed.push('handle:entry');
    writeFileSync(join(dir, 'verdict.json'), JSON.stringify(v));
    expect(refusalOf(() => acceptBundleDir(dir, store, strict))).toMatchObject({
      code: 'altered',
      message: expect.stringContaining('verdict.json'),
    });
    // a rewritten signature.json that claims the new digest does not verify either
    const sig = JSON.parse(readFileSync(join(dir, SIGNATURE_FILE), 'utf8'));
    writeFileSync(
      join(dir, SIGNATURE_FILE),
      JSON.stringify({ ...sig, bundleDigest: snapshotBundle(dir).digest }),
    );
    expect(refusalOf(() => acceptBundleDir(dir, store, strict))).toMatchObject({ code: 'bad-signature' });
  });

  it('refuses a signature by a key the store does not trust, and accepts it once the key is trusted', () => {
    const foreign = loadOrCreateSigningKey(join(home, 'other', 'k.pem'), join(home, 'other', 'k.pub.pem'));
    signBundleDir(dir, foreign);
    expect(refusalOf(() => acceptBundleDir(dir, loadTrustStore(paths), strict))).toMatchObject({
      code: 'untrusted-key',
      message: expect.stringMatching(
        new RegExp(`signed by key ${foreign.keyId}, which is not trusted.*dsu keys add`),
      ),
    });
    const trusted = loadTrustStore({ ...paths, trustedKeys: join(home, 'other', 'k.pub.pem') });
    expect(acceptBundleDir(dir, trusted, strict).signature).toMatchObject({
      verified: true,
      keyId: foreign.keyId,
    });
  });

  it('refuses a bundle made for another program or another build than the process runs', () => {
    const manifest = acceptBundleDir(dir, loadTrustStore(paths), { allowUnsigned: true }).manifest;
    const status = { pid: 42, program: 'kv', buildId: 'b1', patches: [] };
    expect(() => checkBundleTarget(manifest, status)).not.toThrow();
    expect(refusalOf(() => checkBundleTarget(manifest, { ...status, program: 'other' }))).toMatchObject({
      code: 'wrong-program',
      message: expect.stringMatching(/pid 42 runs 'other', but patch .* is for 'kv'/),
    });
    expect(refusalOf(() => checkBundleTarget(manifest, { ...status, buildId: 'b0' }))).toMatchObject({
      code: 'wrong-build',
      message: expect.stringMatching(/pid 42 runs build b0, but patch .* moves build b1 \(v1\) to v2/),
    });
    const applied = {
      id: manifest.patchId,
      fromBuildId: 'b1',
      toBuildId: 'b2',
      appliedAtMs: 0,
      pauseUs: 1,
      updatePoint: 'p',
    };
    expect(refusalOf(() => checkBundleTarget(manifest, { ...status, patches: [applied] }))).toMatchObject({
      code: 'wrong-build',
      message: expect.stringMatching(/already runs build b2/),
    });
  });
});
