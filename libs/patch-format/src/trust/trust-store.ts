import { createPublicKey, type KeyObject } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { keyIdOf, verifyApproval } from './signing';
import type { KeyPaths } from './key-paths';

/** A public key approvals may be signed with, and where it came from. */
export interface TrustedKey {
  keyId: string;
  publicKey: KeyObject;
  /** The file it was read from. */
  source: string;
  /** The name given with `dsu keys add --name`, if any. */
  name?: string;
}

/** Every trusted key, and what could not be read (said, never silently skipped). */
export interface TrustStore {
  keys: TrustedKey[];
  problems: string[];
  /** Where keys were looked for, for error messages. */
  searched: string[];
}

const PEM_BLOCK = /-----BEGIN ([A-Z ]+)-----[\s\S]*?-----END \1-----/g;

/** The Ed25519 public keys in a PEM file (several may be concatenated); refuses private keys. */
export function publicKeysInPem(text: string, source: string): KeyObject[] {
  const keys: KeyObject[] = [];
  for (const m of text.matchAll(PEM_BLOCK)) {
    if (m[1].includes('PRIVATE'))
      throw new Error(`${source} holds a private key; trust only public keys (the .pub.pem file next to it)`);
    if (m[1] !== 'PUBLIC KEY') continue;
    const key = createPublicKey(m[0]);
    if (key.asymmetricKeyType !== 'ed25519')
      throw new Error(`${source} holds a ${key.asymmetricKeyType} key; approvals are signed with Ed25519`);
    keys.push(key);
  }
  if (keys.length === 0) throw new Error(`${source} holds no PEM public key (-----BEGIN PUBLIC KEY-----)`);
  return keys;
}

function metaOf(pemPath: string): { name?: string } {
  try {
    return JSON.parse(readFileSync(pemPath.replace(/\.pem$/, '.json'), 'utf8')) as { name?: string };
  } catch {
    return {};
  }
}

function readEntry(path: string, store: TrustStore, required: boolean): void {
  store.searched.push(path);
  if (!existsSync(path)) {
    if (required) store.problems.push(`${path} (named by DSU_TRUSTED_KEY) does not exist`);
    return;
  }
  const files = statSync(path).isDirectory()
    ? readdirSync(path)
        .filter((f) => f.endsWith('.pem'))
        .sort()
        .map((f) => join(path, f))
    : [path];
  for (const file of files) {
    try {
      const meta = metaOf(file);
      for (const publicKey of publicKeysInPem(readFileSync(file, 'utf8'), file)) {
        const keyId = keyIdOf(publicKey);
        if (!store.keys.some((k) => k.keyId === keyId))
          store.keys.push({ keyId, publicKey, source: file, ...(meta.name ? { name: meta.name } : {}) });
      }
    } catch (err) {
      store.problems.push((err as Error).message);
    }
  }
}

/**
 * The trust store: the keys named by `DSU_TRUSTED_KEY` (else the local signing key's public key,
 * when it exists) plus every key in the trusted directory (`dsu keys add`). Key ids are computed
 * from the keys themselves, never taken from file names.
 */
export function loadTrustStore(paths: KeyPaths): TrustStore {
  const store: TrustStore = { keys: [], problems: [], searched: [] };
  if (paths.trustedKeys)
    for (const entry of paths.trustedKeys.split(/[,:]/).filter(Boolean)) readEntry(entry, store, true);
  else readEntry(paths.signingPublicKey, store, false);
  readEntry(paths.trustedDir, store, false);
  return store;
}

/** The trusted key whose signature over `msg` verifies, or null: any one trusted key suffices. */
export function verifyWithTrustStore(
  store: TrustStore,
  msg: Buffer,
  signatureB64: string,
): TrustedKey | null {
  return store.keys.find((k) => verifyApproval(k.publicKey, msg, signatureB64)) ?? null;
}

/** Says which keys are trusted and how to trust another; for refusal messages. */
export function describeTrust(store: TrustStore): string {
  const ids = store.keys.map((k) => k.keyId + (k.name ? ` (${k.name})` : ''));
  return `${ids.length ? `trusted keys: ${ids.join(', ')}` : `no trusted key (looked in ${store.searched.join(', ')})`}${
    store.problems.length ? `; unreadable: ${store.problems.join('; ')}` : ''
  }; trust a checker's public key with 'dsu keys add <file>' or DSU_TRUSTED_KEY`;
}

/**
 * Adds the public key(s) of `file` to the trusted directory as `<keyId>.pem` (+ `<keyId>.json`
 * with the name); written to a temporary name and renamed, so readers never see half a key.
 */
export function addTrustedKey(trustedDir: string, file: string, name?: string): TrustedKey[] {
  if (!existsSync(file)) throw new Error(`${file} does not exist; give the path of a PEM public key`);
  const keys = publicKeysInPem(readFileSync(file, 'utf8'), file);
  mkdirSync(trustedDir, { recursive: true, mode: 0o700 });
  return keys.map((publicKey) => {
    const keyId = keyIdOf(publicKey);
    const target = join(trustedDir, `${keyId}.pem`);
    const meta = {
      name: name ?? basename(file).replace(/(\.pub)?\.pem$/, ''),
      addedAt: new Date().toISOString(),
      from: file,
    };
    const tmp = `${target}.${process.pid}.tmp`;
    writeFileSync(tmp, publicKey.export({ type: 'spki', format: 'pem' }).toString(), { mode: 0o644 });
    renameSync(tmp, target);
    writeFileSync(join(trustedDir, `${keyId}.json`), JSON.stringify(meta, null, 2) + '\n');
    return { keyId, publicKey, source: target, name: meta.name };
  });
}

/**
 * Removes a key from the trusted directory by key id. Keys trusted through DSU_TRUSTED_KEY or as
 * the local signing key are not in that directory: the error says so rather than pretending.
 */
export function removeTrustedKey(paths: KeyPaths, keyId: string): TrustedKey {
  const inDir: TrustStore = { keys: [], problems: [], searched: [] };
  readEntry(paths.trustedDir, inDir, false);
  const key = inDir.keys.find((k) => k.keyId === keyId);
  if (!key) {
    const elsewhere = loadTrustStore(paths).keys.find((k) => k.keyId === keyId);
    throw new Error(
      elsewhere
        ? `key ${keyId} is trusted through ${elsewhere.source} (${paths.trustedKeys ? 'DSU_TRUSTED_KEY' : 'the local signing key'}), not through ${paths.trustedDir}; change that setting instead`
        : `no trusted key ${keyId}; ${describeTrust(loadTrustStore(paths))}`,
    );
  }
  if (publicKeysInPem(readFileSync(key.source, 'utf8'), key.source).length > 1)
    throw new Error(`${key.source} holds several keys; remove key ${keyId} from it by hand`);
  rmSync(key.source, { force: true });
  rmSync(key.source.replace(/\.pem$/, '.json'), { force: true });
  return key;
}
