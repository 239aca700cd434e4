import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildVersion } from '@dsu/instrument';
import { validateManifest } from '@dsu/patch-format';
import { buildPatch, rebuildPatch, UnsupportedChangeError } from './build-patch';

const MAKEFILE = 'app: main.o\n\t$(CC) -o app main.o\nmain.o: main.c\n\t$(CC) -O2 -c main.c -o main.o\n';

describe('buildPatch', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'dsu-patchgen-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function version(name: string, source: string): Promise<string> {
    const src = join(dir, 'src', name);
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'main.c'), source);
    writeFileSync(join(src, 'Makefile'), MAKEFILE);
    await buildVersion(src, join(dir, 'builds', name), { version: name });
    return join(dir, 'builds', name);
  }

  const base = (body: string, extra = '') =>
    `struct point { int x; int y;${extra} };\nstruct point origin;\nstatic int helper(int v) { return v + 1; }\nint compute(int v) { ${body} }\nint main(void) { return compute(origin.x) == 1 ? 0 : 1; }\n`;

  it('writes a bundle for a body change: manifest, patch.so, descriptor, patch units, models', async () => {
    const v1 = await version('v1', base('return helper(v);'));
    const v2 = await version('v2', base('return helper(v) * 1;'));
    const { manifest } = await buildPatch(v1, v2, join(dir, 'p12'));
    expect(manifest.functions).toEqual([{ key: 'compute', change: 'body', newSymbol: expect.stringMatching(/^__dsu_impl_compute__v[0-9a-f]{10}$/) }]);
    const so = readFileSync(join(dir, 'p12', 'patch.so'));
    expect(validateManifest(JSON.parse(readFileSync(join(dir, 'p12', 'manifest.json'), 'utf8')), so).patchId).toBe(manifest.patchId);
    expect(readFileSync(join(dir, 'p12', 'patch.c'), 'utf8')).toMatch(/\{ "compute", DSU_CHANGE_BODY, \(void \*\)&__dsu_impl_compute__v/);
    // The new body calls the static helper of the running program through its slot.
    expect(readFileSync(join(dir, 'p12', 'units', 'main.c.i'), 'utf8')).toMatch(/__atomic_load_n\(&__dsu_slot_u[0-9a-f]{8}__helper/);
    expect(existsSync(join(dir, 'p12', 'models', 'from.json'))).toBe(true);

    // Hand-edit the new body and rebuild: a new patch.so, hash and id, and a consistent bundle.
    const unitFile = join(dir, 'p12', 'units', 'main.c.i');
    writeFileSync(unitFile, readFileSync(unitFile, 'utf8').replace('* 1;', '* 3;'));
    const rebuilt = await rebuildPatch(join(dir, 'p12'));
    expect(rebuilt.patchId).not.toBe(manifest.patchId);
    expect(rebuilt.functions).toEqual(manifest.functions);
    expect(validateManifest(rebuilt, readFileSync(join(dir, 'p12', 'patch.so'))).patchId).toBe(rebuilt.patchId);
  }, 120_000);

  it('refuses data changes with the list of what changed, and identical versions', async () => {
    const v1 = join(dir, 'builds', 'v1');
    const v3 = await version('v3', base('return helper(v);', ' int z;') + 'int added_global;\n');
    const err = await buildPatch(v1, v3, join(dir, 'p13')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedChangeError);
    expect((err as UnsupportedChangeError).reasons).toEqual(["type 'struct point' changes its layout", "global 'added_global' is added"]);
    await expect(buildPatch(v1, v1, join(dir, 'p11'))).rejects.toThrow(/nothing to patch/);
  }, 120_000);
});
