import * as t from '@dsu/patch-format';
import { failWith } from '../fail-with';
import type { Output } from '../output';

// `dsu keys`: the local signing key (what `dsu check` and the checker service sign with) and the
// trust store (what `dsu apply` and the applier service accept). docs/bundle-signing.md.

interface KeyView {
  keyId: string;
  name: string | null;
  source: string;
}

/** `dsu keys`: the local signing key id (made on first use) and every trusted key. */
export async function keysListCommand(out: Output): Promise<number> {
  const paths = t.keyPathsFromEnv();
  const signing = t.loadOrCreateSigningKey(paths.signingKey, paths.signingPublicKey);
  const store = t.loadTrustStore(paths);
  const trusted: KeyView[] = store.keys.map((k) => ({
    keyId: k.keyId,
    name: k.name ?? null,
    source: k.source,
  }));
  out.log(`signing key ${signing.keyId} (public key: ${paths.signingPublicKey})`);
  out.log(
    `trusted keys (${paths.trustedKeys ? 'DSU_TRUSTED_KEY' : 'the signing key'} and ${paths.trustedDir}):`,
  );
  for (const k of trusted) out.log(`  ${k.keyId}  ${k.name ?? ''}${k.name ? '  ' : ''}${k.source}`);
  if (trusted.length === 0) out.log('  none: dsu apply refuses every signed bundle until a key is added');
  for (const p of store.problems) out.log(`  unreadable: ${p}`);
  out.result({
    signingKey: { keyId: signing.keyId, publicKey: paths.signingPublicKey },
    trusted,
    trustedDir: paths.trustedDir,
    trustedKeyEnv: paths.trustedKeys ?? null,
    problems: store.problems,
  });
  return 0;
}

/** `dsu keys add <public-key-file> [--name N]`: trust a checker's public key (rotation). */
export async function keysAddCommand(file: string, opts: { name?: string }, out: Output): Promise<number> {
  const paths = t.keyPathsFromEnv();
  try {
    const added = t.addTrustedKey(paths.trustedDir, file, opts.name);
    for (const k of added) out.log(`trusted key ${k.keyId} '${k.name}' (${k.source})`);
    out.result({ added: added.map((k) => ({ keyId: k.keyId, name: k.name ?? null, source: k.source })) });
    return 0;
  } catch (err) {
    return failWith(out, 'key-invalid', (err as Error).message);
  }
}

/** `dsu keys remove <keyId>`: stop trusting a key added with `dsu keys add`. */
export async function keysRemoveCommand(keyId: string, out: Output): Promise<number> {
  try {
    const k = t.removeTrustedKey(t.keyPathsFromEnv(), keyId);
    out.log(`no longer trusted: ${k.keyId}${k.name ? ` '${k.name}'` : ''}`);
    out.result({ removed: { keyId: k.keyId, name: k.name ?? null } });
    return 0;
  } catch (err) {
    return failWith(out, 'key-not-found', (err as Error).message);
  }
}
