import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import {
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
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

/** A key's id: the first 16 hex digits of the sha256 of its SPKI encoding. */
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
 * public key next to it as `publicPath` for the appliers to trust). Safe when several processes
 * start at once (`dsu check` runs in parallel, the checker service): the key is written to a
 * temporary name and linked into place, so exactly one key wins and nobody reads half a file.
 */
export function loadOrCreateSigningKey(path: string, publicPath: string): SigningKey {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const { privateKey } = generateKeyPairSync('ed25519');
    const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    writeFileSync(tmp, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
    try {
      linkSync(tmp, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err; // another process made it first
    } finally {
      unlinkSync(tmp);
    }
  }
  const privateKey = createPrivateKey(readFileSync(path));
  const publicKey = createPublicKey(privateKey);
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  if (!existsSync(publicPath) || readFileSync(publicPath, 'utf8') !== pem) {
    mkdirSync(dirname(publicPath), { recursive: true });
    const tmp = `${publicPath}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    writeFileSync(tmp, pem);
    renameSync(tmp, publicPath);
  }
  return { privateKey, publicKey, keyId: keyIdOf(publicKey) };
}

/** Signs an approval message; base64 Ed25519 signature. */
export function signApproval(key: SigningKey, msg: Buffer): string {
  return sign(null, msg, key.privateKey).toString('base64');
}

/** Loads one trusted public key file; says where it is expected when it is missing (see also trust/trust-store.ts). */
export function loadTrustedKey(path: string): { publicKey: KeyObject; keyId: string } {
  if (!existsSync(path)) {
    throw new Error(
      `no trusted checker key at ${path}; copy the checker's public key there (it writes it on first start) or set DSU_TRUSTED_KEY`,
    );
  }
  const publicKey = createPublicKey(readFileSync(path));
  return { publicKey, keyId: keyIdOf(publicKey) };
}

/** True when `signatureB64` is `publicKey`'s signature of `msg`; false for any malformed input. */
export function verifyApproval(publicKey: KeyObject, msg: Buffer, signatureB64: string): boolean {
  try {
    return verify(null, msg, publicKey, Buffer.from(signatureB64, 'base64'));
  } catch {
    return false;
  }
}
