import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { computePatchId, type PatchManifest } from '../src/manifest';

/**
 * Test helper: writes a minimal, consistent bundle directory (manifest, patch.so, models, units)
 * and, unless `verdict` is null, the verdict.json `dsu check` would write. Returns its manifest.
 */
export function writeTestBundle(
  dir: string,
  opts: { so?: string; verdict?: 'approved' | 'rejected' | null; from?: string } = {},
): PatchManifest {
  mkdirSync(join(dir, 'models'), { recursive: true });
  mkdirSync(join(dir, 'units'), { recursive: true });
  const so = Buffer.from(opts.so ?? '\x7fELF patch v1->v2');
  writeFileSync(join(dir, 'patch.so'), so);
  writeFileSync(join(dir, 'patch.c'), '/* descriptor */\n');
  writeFileSync(join(dir, 'models', 'from.json'), '{"program":"kv"}');
  writeFileSync(join(dir, 'models', 'to.json'), '{"program":"kv","v":2}');
  writeFileSync(join(dir, 'units', 'main.c.i'), 'int main(void) { return 0; }\n');
  return rewriteManifest(dir, so, opts.from ?? 'b1', opts.verdict === undefined ? 'approved' : opts.verdict);
}

/** Writes manifest.json (soSha256 and patchId recomputed, as an attacker would) and the verdict. */
export function rewriteManifest(
  dir: string,
  so: Buffer,
  from = 'b1',
  verdict: 'approved' | 'rejected' | null = 'approved',
): PatchManifest {
  const body: Omit<PatchManifest, 'patchId'> = {
    format: 1,
    program: 'kv',
    from: { buildId: from, version: 'v1' },
    to: { buildId: 'b2', version: 'v2' },
    soSha256: createHash('sha256').update(so).digest('hex'),
    functions: [{ key: 'handle', change: 'body', newSymbol: '__dsu_impl_handle__v2' }],
    types: [],
    globals: [],
    allowedUpdatePoints: ['serve:loop'],
  };
  const manifest = { ...body, patchId: computePatchId(body, so) };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  if (verdict)
    writeFileSync(
      join(dir, 'verdict.json'),
      JSON.stringify({
        verdict,
        findings:
          verdict === 'rejected'
            ? [{ rule: 'activeness', severity: 'error', message: 'handle is always active' }]
            : [],
        updatePoints: { allowed: ['serve:loop'], denied: [] },
        patchId: manifest.patchId,
      }),
    );
  return manifest;
}
