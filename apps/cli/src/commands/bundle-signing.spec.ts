import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  acceptBundleDir,
  computePatchId,
  keyPathsFromEnv,
  loadTrustStore,
  type PatchManifest,
} from '@dsu/patch-format';
import { createOutput } from '../output';
import { signCheckedBundle } from './bundle-signing';

// `dsu check` signs an approved bundle with the local key ($DSU_HOME/keys, the checker service's
// files) and takes back a signature when a later check rejects the bundle.
describe('dsu check: signing the checked bundle', () => {
  let home: string;
  const saved = process.env.DSU_HOME;
  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'dsu-check-sign-'));
    process.env.DSU_HOME = home;
  });
  afterEach(() => {
    rmSync(home, { recursive: true, force: true });
    process.env.DSU_HOME = saved;
  });

  function bundle(verdict: 'approved' | 'rejected'): string {
    const dir = join(home, 'b');
    mkdirSync(dir, { recursive: true });
    const so = Buffer.from('patch');
    writeFileSync(join(dir, 'patch.so'), so);
    const body: Omit<PatchManifest, 'patchId'> = {
      format: 1,
      program: 'kv',
      from: { buildId: 'b1', version: 'v1' },
      to: { buildId: 'b2', version: 'v2' },
      soSha256: createHash('sha256').update(so).digest('hex'),
      functions: [{ key: 'f', change: 'body', newSymbol: 'f__v2' }],
      types: [],
      globals: [],
      allowedUpdatePoints: [],
    };
    const patchId = computePatchId(body, so);
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ ...body, patchId }));
    writeFileSync(
      join(dir, 'verdict.json'),
      JSON.stringify({ verdict, patchId, findings: [], updatePoints: { allowed: [], denied: [] } }),
    );
    return dir;
  }

  it('signs an approved bundle with the key made under $DSU_HOME/keys, which dsu apply trusts', async () => {
    const dir = bundle('approved');
    const out = createOutput(true);
    const signed = await signCheckedBundle(dir, true, out);
    expect(signed).toEqual({
      keyId: expect.stringMatching(/^[0-9a-f]{16}$/),
      bundleDigest: expect.any(String),
      file: 'signature.json',
    });
    expect(existsSync(join(home, 'keys', 'checker-ed25519.pem'))).toBe(true);
    expect(JSON.parse(readFileSync(join(dir, 'signature.json'), 'utf8'))).toMatchObject({
      keyId: signed?.keyId,
    });
    expect(
      acceptBundleDir(dir, loadTrustStore(keyPathsFromEnv()), { allowUnsigned: false }).signature,
    ).toMatchObject({
      verified: true,
      keyId: signed?.keyId,
    });
  });

  it('removes the signature of an earlier approval when the bundle is now rejected', async () => {
    const dir = bundle('approved');
    await signCheckedBundle(dir, true, createOutput(true));
    bundle('rejected');
    expect(await signCheckedBundle(dir, false, createOutput(true))).toBeNull();
    expect(existsSync(join(dir, 'signature.json'))).toBe(false);
  });
});
