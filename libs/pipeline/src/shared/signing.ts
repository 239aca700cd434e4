import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** What the checker's signature covers: the bundle bytes and the builds it moves between. */
export function approvalMessage(a: {
  patchId: string;
  bundleSha256: string;
  fromBuildId: string;
  toBuildId: string;
}): Buffer {
  return Buffer.from(`dsu-patch-approval:v1:${a.patchId}:${a.bundleSha256}:${a.fromBuildId}:${a.toBuildId}`);
}

export function keyIdOf(pub: KeyObject): string {
  return createHash('sha256')
    .update(pub.export({ type: 'spki', format: 'der' }))
    .digest('hex')
    .slice(0, 16);
}

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  keyId: string;
}

/**
 * The checker's Ed25519 key: read from `path`, or generated on first use (private key 0600,
 * public key next to it as `publicPath` for the appliers to trust).
 */
export function loadOrCreateSigningKey(path: string, publicPath: string): SigningKey {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const { privateKey } = generateKeyPairSync('ed25519');
    writeFileSync(path, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  }
  const privateKey = createPrivateKey(readFileSync(path));
  const publicKey = createPublicKey(privateKey);
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  if (!existsSync(publicPath) || readFileSync(publicPath, 'utf8') !== pem) {
    mkdirSync(dirname(publicPath), { recursive: true });
    writeFileSync(publicPath, pem);
  }
  return { privateKey, publicKey, keyId: keyIdOf(publicKey) };
}

export function signApproval(key: SigningKey, msg: Buffer): string {
  return sign(null, msg, key.privateKey).toString('base64');
}

/** Loads the trusted public key; says where it is expected when it is missing. */
export function loadTrustedKey(path: string): { publicKey: KeyObject; keyId: string } {
  if (!existsSync(path)) {
    throw new Error(
      `no trusted checker key at ${path}; copy the checker's public key there (it writes it on first start) or set DSU_TRUSTED_KEY`,
    );
  }
  const publicKey = createPublicKey(readFileSync(path));
  return { publicKey, keyId: keyIdOf(publicKey) };
}

export function verifyApproval(publicKey: KeyObject, msg: Buffer, signatureB64: string): boolean {
  try {
    return verify(null, msg, publicKey, Buffer.from(signatureB64, 'base64'));
  } catch {
    return false;
  }
}
