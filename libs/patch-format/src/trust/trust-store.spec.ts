import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { approvalMessage, keyIdOf, loadOrCreateSigningKey, signApproval } from './signing';
import { keyPathsFromEnv } from './key-paths';
import { addTrustedKey, loadTrustStore, removeTrustedKey, verifyWithTrustStore } from './trust-store';

const msg = approvalMessage({
  patchId: 'p',
  bundleSha256: 'd'.repeat(64),
  fromBuildId: 'b1',
  toBuildId: 'b2',
});

function keyPair(dir: string, name: string) {
  const key = loadOrCreateSigningKey(join(dir, `${name}.pem`), join(dir, `${name}.pub.pem`));
  return { key, pub: join(dir, `${name}.pub.pem`) };
}

describe('trust store', () => {
  let home: string;
  let other: string;
  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'dsu-trust-'));
    other = mkdtempSync(join(tmpdir(), 'dsu-trust-other-'));
  });
  afterEach(() => {
    rmSync(home, { recursive: true, force: true });
    rmSync(other, { recursive: true, force: true });
  });

  it('trusts the local signing key by default, and keys added to the trusted directory (rotation)', () => {
    const paths = keyPathsFromEnv({ DSU_HOME: home });
    expect(loadTrustStore(paths).keys).toEqual([]);
    const local = loadOrCreateSigningKey(paths.signingKey, paths.signingPublicKey);
    const old = keyPair(other, 'old');
    const next = keyPair(other, 'next');
    expect(addTrustedKey(paths.trustedDir, old.pub, 'old-checker').map((k) => k.keyId)).toEqual([
      old.key.keyId,
    ]);
    addTrustedKey(paths.trustedDir, next.pub);
    const store = loadTrustStore(paths);
    expect(store.keys.map((k) => k.keyId)).toEqual(
      expect.arrayContaining([local.keyId, old.key.keyId, next.key.keyId]),
    );
    expect(store.keys.find((k) => k.keyId === old.key.keyId)?.name).toBe('old-checker');
    // any trusted key verifies; a key outside the store does not
    for (const k of [local, old.key, next.key])
      expect(verifyWithTrustStore(store, msg, signApproval(k, msg))?.keyId).toBe(k.keyId);
    const stranger = keyPair(other, 'stranger');
    expect(verifyWithTrustStore(store, msg, signApproval(stranger.key, msg))).toBeNull();

    expect(removeTrustedKey(paths, old.key.keyId).keyId).toBe(old.key.keyId);
    expect(verifyWithTrustStore(loadTrustStore(paths), msg, signApproval(old.key, msg))).toBeNull();
    expect(readdirSync(paths.trustedDir).sort()).toEqual([`${next.key.keyId}.json`, `${next.key.keyId}.pem`]);
    expect(() => removeTrustedKey(paths, local.keyId)).toThrow(
      /through .*checker-ed25519.pub.pem \(the local signing key\)/,
    );
    expect(() => removeTrustedKey(paths, 'ffffffffffffffff')).toThrow(
      /no trusted key ffffffffffffffff; trusted keys: /,
    );
  });

  it('DSU_TRUSTED_KEY names one key, a file of several, or directories; it replaces the local key', () => {
    const a = keyPair(other, 'a');
    const b = keyPair(other, 'b');
    const c = keyPair(join(other, 'dir'), 'c');
    writeFileSync(
      join(other, 'both.pem'),
      `${a.key.publicKey.export({ type: 'spki', format: 'pem' })}\n${b.key.publicKey.export({ type: 'spki', format: 'pem' })}`,
    );
    const paths = keyPathsFromEnv({ DSU_HOME: home, DSU_TRUSTED_KEY: a.pub });
    const local = loadOrCreateSigningKey(paths.signingKey, paths.signingPublicKey);
    expect(loadTrustStore(paths).keys.map((k) => k.keyId)).toEqual([a.key.keyId]);
    const several = loadTrustStore({
      ...paths,
      trustedKeys: `${join(other, 'both.pem')},${join(other, 'dir')}`,
    });
    expect(several.keys.map((k) => k.keyId).sort()).toEqual([a.key.keyId, b.key.keyId, c.key.keyId].sort());
    expect(several.keys.map((k) => k.keyId)).not.toContain(local.keyId);
    const missing = loadTrustStore({ ...paths, trustedKeys: join(other, 'nope.pem') });
    expect(missing.problems).toEqual([
      expect.stringMatching(/nope.pem \(named by DSU_TRUSTED_KEY\) does not exist/),
    ]);
  });

  it('refuses private keys and keys of other algorithms, and reads key ids from the keys', () => {
    const paths = keyPathsFromEnv({ DSU_HOME: home });
    const a = keyPair(other, 'a');
    expect(() => addTrustedKey(paths.trustedDir, join(other, 'a.pem'))).toThrow(
      /holds a private key; trust only public keys/,
    );
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({
      type: 'spki',
      format: 'pem',
    });
    writeFileSync(join(other, 'rsa.pem'), rsa);
    expect(() => addTrustedKey(paths.trustedDir, join(other, 'rsa.pem'))).toThrow(
      /rsa key; approvals are signed with Ed25519/,
    );
    writeFileSync(join(other, 'empty.pem'), 'nothing');
    expect(() => addTrustedKey(paths.trustedDir, join(other, 'empty.pem'))).toThrow(/no PEM public key/);
    // a file named after another key id still counts as the key it holds
    mkdirSync(paths.trustedDir, { recursive: true });
    writeFileSync(
      join(paths.trustedDir, '0000000000000000.pem'),
      a.key.publicKey.export({ type: 'spki', format: 'pem' }),
    );
    expect(loadTrustStore(paths).keys.map((k) => k.keyId)).toEqual([keyIdOf(a.key.publicKey)]);
  });
});
