import { createHash } from 'node:crypto';
import { computePatchId, PatchManifest, validateManifest } from './manifest';

function bundle(): { manifest: PatchManifest; so: Buffer } {
  const so = Buffer.from('\x7fELF patch');
  const body: Omit<PatchManifest, 'patchId'> = {
    format: 1,
    program: 'kvstore',
    from: { buildId: 'b1', version: '1.0' },
    to: { buildId: 'b2', version: '1.1' },
    soSha256: createHash('sha256').update(so).digest('hex'),
    functions: [{ key: 'handle', change: 'body', newSymbol: '__dsu_impl_handle__v2' }],
    types: [],
    globals: [],
    allowedUpdatePoints: [],
  };
  return { manifest: { ...body, patchId: computePatchId(body, so) }, so };
}

describe('patch manifest', () => {
  it('accepts a consistent bundle; the id ignores key order', () => {
    const { manifest, so } = bundle();
    expect(validateManifest(JSON.parse(JSON.stringify(manifest)), so)).toEqual(manifest);
    const reordered = Object.fromEntries(Object.entries(manifest).reverse()) as unknown as PatchManifest;
    expect(computePatchId(reordered, so)).toBe(manifest.patchId);
  });

  it('detects an altered patch.so or manifest and schema violations', () => {
    const { manifest, so } = bundle();
    expect(() => validateManifest(manifest, Buffer.from('other'))).toThrow(/altered/);
    const edited = { ...manifest, functions: [{ key: 'evil', change: 'body' as const }] };
    expect(() => validateManifest(edited, so)).toThrow(/does not match the bundle/);
    expect(() => validateManifest({ ...manifest, functions: [{ key: 'x', change: 'rename' }] })).toThrow(/allowed values/);
    expect(() => validateManifest({ ...manifest, extra: 1 })).toThrow(/additional properties/);
  });
});
