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

  async function version(name: string, source: string, slop?: string): Promise<string> {
    const src = join(dir, 'src', name);
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'main.c'), source);
    writeFileSync(join(src, 'Makefile'), MAKEFILE);
    await buildVersion(src, join(dir, 'builds', name), { version: name, ...(slop ? { slop } : {}) });
    return join(dir, 'builds', name);
  }

  const base = (body: string, extra = '') =>
    `struct point { int x; int y;${extra} };\nstruct point origin;\nstatic int helper(int v) { return v + 1; }\nint compute(int v) { ${body} }\nint main(void) { return compute(origin.x) == 1 ? 0 : 1; }\n`;

  it('writes a bundle for a body change: manifest, patch.so, descriptor, patch units, models', async () => {
    const v1 = await version('v1', base('return helper(v);'));
    const v2 = await version('v2', base('return helper(v) * 1;'));
    const phases: string[] = [];
    const { manifest } = await buildPatch(v1, v2, join(dir, 'p12'), { onPhase: (p) => void phases.push(p) });
    // Each phase is announced once, in order (what `dsu patch` shows on a terminal).
    expect(phases).toEqual(['contents', 'data and frames', 'write and compile']);
    expect(manifest.functions).toEqual([
      {
        key: 'compute',
        change: 'body',
        newSymbol: expect.stringMatching(/^__dsu_impl_compute__v[0-9a-f]{10}$/),
        reasons: ['body changed'],
      },
      // main never waits at an update point, so v1 called compute directly (inlinable): it goes too
      {
        key: 'main',
        change: 'body',
        newSymbol: expect.stringMatching(/^__dsu_impl_main__v/),
        reasons: ["may have inlined 'compute', which the patch replaces"],
      },
    ]);
    const so = readFileSync(join(dir, 'p12', 'patch.so'));
    expect(
      validateManifest(JSON.parse(readFileSync(join(dir, 'p12', 'manifest.json'), 'utf8')), so).patchId,
    ).toBe(manifest.patchId);
    expect(readFileSync(join(dir, 'p12', 'patch.c'), 'utf8')).toMatch(
      /\{ "compute", DSU_CHANGE_BODY, \(void \*\)&__dsu_impl_compute__v/,
    );
    // The new body calls the static helper of the running program through its slot.
    expect(readFileSync(join(dir, 'p12', 'units', 'main.c.i'), 'utf8')).toMatch(
      /__atomic_load_n\(&__dsu_slot_u[0-9a-f]{8}__helper/,
    );
    expect(existsSync(join(dir, 'p12', 'models', 'from.json'))).toBe(true);

    // Hand-edit the new body and rebuild: a new patch.so, hash and id, and a consistent bundle.
    const unitFile = join(dir, 'p12', 'units', 'main.c.i');
    writeFileSync(unitFile, readFileSync(unitFile, 'utf8').replace('* 1;', '* 3;'));
    const rebuilt = await rebuildPatch(join(dir, 'p12'));
    expect(rebuilt.patchId).not.toBe(manifest.patchId);
    expect(rebuilt.functions).toEqual(manifest.functions);
    expect(validateManifest(rebuilt, readFileSync(join(dir, 'p12', 'patch.so'))).patchId).toBe(
      rebuilt.patchId,
    );
  }, 120_000);

  it('carries a struct layout change and an added global; explains the ripple', async () => {
    const v1 = join(dir, 'builds', 'v1');
    const v3 = await version('v3', base('return helper(v);', ' int z;') + 'int added_global = 5;\n');
    const { manifest } = await buildPatch(v1, v3, join(dir, 'p13'));
    expect(manifest.types).toEqual([
      expect.objectContaining({
        name: 'struct point',
        oldSize: 8,
        newSize: 16,
        capacity: 40,
        mode: 'eager',
        fields: [
          { field: 'x', how: 'copied' },
          { field: 'y', how: 'copied' },
          { field: 'z', how: 'new, zero' },
        ],
      }),
    ]);
    expect(manifest.types[0].instances.globals).toEqual([
      { what: 'global origin', symbol: 'origin', offset: 0, count: 1 },
    ]);
    expect(manifest.globals).toEqual([
      { key: 'added_global', change: 'added', note: 'defined by the patch with its new initializer' },
      { key: 'origin', change: 'type', note: "instances of 'struct point' transformed" },
    ]);
    // main's text did not change, but it reads origin.x with the old layout compiled in
    expect(manifest.functions).toEqual([
      expect.objectContaining({
        key: 'main',
        change: 'body',
        reasons: ["uses 'struct point' concretely (its layout changed)"],
      }),
    ]);
    expect(readFileSync(join(dir, 'p13', 'units', 'main.c.i'), 'utf8')).toMatch(/int added_global = 5;/);
    expect(readFileSync(join(dir, 'p13', 'patch.c'), 'utf8')).toMatch(
      /const struct dsu_patch_data dsu_patch_data = \{ DSU_DATA_ABI_VERSION, 1u, types, NULL \};/,
    );
  }, 120_000);

  it('carries a signature change with every caller, even callers whose text did not change', async () => {
    const v1 = join(dir, 'builds', 'v1');
    const v6 = await version(
      'v6',
      base('return helper((int)v);').replace('int compute(int v)', 'long compute(long v)'),
    );
    const { manifest } = await buildPatch(v1, v6, join(dir, 'p16'));
    expect(manifest.functions).toEqual([
      expect.objectContaining({
        key: 'compute',
        change: 'signature',
        reasons: ['signature changed (int (int) -> long (long))'],
      }),
      expect.objectContaining({
        key: 'main',
        change: 'body',
        reasons: [
          "calls 'compute', whose signature changed",
          "may have inlined 'compute', which the patch replaces",
        ],
      }),
    ]);
    expect(readFileSync(join(dir, 'p16', 'patch.c'), 'utf8')).toMatch(/\{ "compute", DSU_CHANGE_SIGNATURE, /);
  }, 120_000);

  it('replaces the callers that may have inlined a changed function, transitively, and no others', async () => {
    const prog = (sq: string) =>
      `#include <poll.h>\nstatic int sq(int x) { return ${sq}; }\nstatic int sum(int n) { int s = 0; for (int i = 0; i < n; i++) s += sq(i); return s; }\n` +
      `static int twice(int n) { return 2 * sum(n); }\nstatic int waits(int n) { poll(0, 0, 0); return sq(n); }\n` +
      `int main(void) { return twice(3) + waits(2) == 14 ? 0 : 1; }\n`;
    const a = await version('inl1', prog('x * x'));
    const b = await version('inl2', prog('x * x + 0'));
    const { manifest } = await buildPatch(a, b, join(dir, 'pinl'));
    const why = Object.fromEntries(manifest.functions.map((f) => [f.key.replace(/^.*::/, ''), f.reasons]));
    expect(why).toEqual({
      sq: ['body changed'],
      sum: ["may have inlined 'main.c::sq', which the patch replaces"],
      twice: ["may have inlined 'main.c::sum', which the patch replaces"],
    });
    // waits blocks in poll: it calls sq through its slot and is not replaced; main calls waits
    // (not quiet), so it is not quiet either
  }, 120_000);

  it('lays out the types the running program keeps in their C layout without room in the patch too', async () => {
    // an array of struct point: a patch laying it out with room would step through it wrongly
    const src = (k: number) =>
      `struct point { int x; int y; };\nstruct point pts[4];\nstruct fresh { int a; };\nint sum(void) { int s = 0; for (int i = 0; i < 4; i++) s += ${k} * pts[i].x; return s; }\n` +
      `int main(void) { return sum(); }\n`;
    const k1 = await version('k1', src(1), 'struct point=none');
    const k2 = await version(
      'k2',
      src(2).replace(
        'struct fresh { int a; };',
        'struct fresh { int a; };\nstruct newer { int b; };\nstruct newer made;\nint use(void) { return made.b; }',
      ),
      'struct point=none',
    );
    await buildPatch(k1, k2, join(dir, 'pk'));
    const unit = readFileSync(join(dir, 'pk', 'units', 'main.c.i'), 'utf8');
    expect(unit).toMatch(/struct point \{ int x; int y; \};/);
    expect(unit).not.toMatch(/__dsu_shape_struct_point/);
    // a type new in this version gets the room the new build gave it
    expect(unit).toMatch(/struct newer \{ int b; +unsigned char __dsu_room/);
  }, 120_000);

  it('reports a changed initializer of an existing global (the running value is kept)', async () => {
    const v8 = await version(
      'v8',
      base('return helper(v);').replace('struct point origin;', 'struct point origin = { 1, 2 };'),
    );
    const v9 = await version(
      'v9',
      base('return helper(v) + 0;').replace('struct point origin;', 'struct point origin = { 1, 3 };'),
    );
    const { manifest } = await buildPatch(v8, v9, join(dir, 'p89'));
    expect(manifest.globals).toEqual([
      {
        key: 'origin',
        change: 'initializer',
        note: 'its initializer changed; the running value is kept (set it in the state transformer if needed)',
      },
    ]);
  }, 120_000);

  it('carries a renamed global (patch.yaml) with its running value', async () => {
    const v1 = join(dir, 'builds', 'v1');
    const v7 = await version('v7', base('return helper(v);').replace(/origin/g, 'center'));
    const { manifest } = await buildPatch(v1, v7, join(dir, 'p17'), {
      spec: { globalRenames: { center: 'origin' } },
    });
    expect(manifest.globals).toEqual([
      {
        key: 'center',
        change: 'renamed',
        from: 'origin',
        note: 'defined by the patch; the running value is copied at update time',
      },
    ]);
    const unit = readFileSync(join(dir, 'p17', 'units', 'main.c.i'), 'utf8');
    expect(unit).toContain('extern unsigned char __dsu_renamed_0[] __asm__("origin");');
    expect(unit).toContain(
      "__builtin_memcpy(&center, __dsu_renamed_0, sizeof center); /* center: value of 'origin' */",
    );
    expect(readFileSync(join(dir, 'p17', 'patch.c'), 'utf8')).toMatch(
      /dsu_patch_data = \{ DSU_DATA_ABI_VERSION, 0u, types, __dsu_state_xf__v[0-9a-f]+ \}/,
    );
  }, 120_000);

  it('refuses what it cannot carry with the list of reasons, and identical versions', async () => {
    const v1 = join(dir, 'builds', 'v1');
    const v4 = await version(
      'v4',
      base('return helper(v);').replace('struct point origin;', 'struct point origin;\nlong counter;'),
    );
    const v5 = await version(
      'v5',
      base('return helper(v);').replace('struct point origin;', 'struct point origin;\nint counter;'),
    );
    const err = await buildPatch(v4, v5, join(dir, 'p45')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedChangeError);
    expect((err as UnsupportedChangeError).reasons).toEqual([
      expect.stringMatching(
        /^global 'counter' changes type from 'long' to 'int'; .*Give it a new name in the new version and list the rename in patch.yaml/,
      ),
    ]);
    // the way out the refusal names: a new name, the rename in patch.yaml, the value converted
    const v6 = await version(
      'v6',
      base('counter32++; return helper(v);').replace(
        'struct point origin;',
        'struct point origin;\nint counter32;',
      ),
    );
    const { manifest } = await buildPatch(v4, v6, join(dir, 'p46'), {
      spec: { globalRenames: { counter32: 'counter' } },
    });
    expect(manifest.globals).toEqual([
      expect.objectContaining({
        key: 'counter32',
        change: 'renamed',
        from: 'counter',
        note: expect.stringContaining("converted from 'long' to 'int'"),
      }),
    ]);
    const unit = readFileSync(join(dir, 'p46', 'units', 'main.c.i'), 'utf8');
    expect(unit).toContain('extern signed long long __dsu_renamed_0 __asm__("counter");');
    expect(unit).toContain("running value %lld of 'counter' does not fit 'int'");
    await expect(
      buildPatch(v1, v3Dir(), join(dir, 'p13c'), {
        spec: { types: { 'struct point': { mode: 'fast' as 'lazy' } } },
      }),
    ).rejects.toThrow(/patch.yaml gives type 'struct point' mode 'fast'; use eager or lazy/);
    await expect(buildPatch(v1, v1, join(dir, 'p11'))).rejects.toThrow(/nothing to patch/);
  }, 120_000);

  it('transforms lazily on request: mode lazy in the manifest, descriptor and stamp variable in the bundle', async () => {
    const v1 = join(dir, 'builds', 'v1');
    const { manifest } = await buildPatch(v1, v3Dir(), join(dir, 'p13b'), { transform: 'lazy' });
    expect(manifest.types.map((t) => [t.name, t.mode])).toEqual([['struct point', 'lazy']]);
    const patchC = readFileSync(join(dir, 'p13b', 'patch.c'), 'utf8');
    expect(patchC).toMatch(/^unsigned int __dsu_lzv_struct_point__v[0-9a-f]+ = 0u;$/m);
    expect(patchC).toMatch(/\{ "struct point", 0x[0-9a-f]+ULL, &__dsu_lzv_struct_point__v[0-9a-f]+ \},/);
    expect(patchC).toContain(
      'const struct dsu_patch_lazy_checks dsu_patch_lazy_checks = { DSU_DATA_ABI_VERSION, 1u, lazy_checks };',
    );
    const unit = readFileSync(join(dir, 'p13b', 'units', 'main.c.i'), 'utf8');
    expect(unit).toMatch(/2u \/\* lazy \*\/,[\s\S]*&__dsu_lzv_struct_point__v[0-9a-f]+ \};/);
    // the tag check sits right after the type's definition in the patch unit
    expect(unit).toMatch(/struct point \*__dsu_lz_struct_point\(const struct point \*p\)/);
    // a conversion that can fail is refused in lazy mode (it would fail after the update), not in eager mode
    const v8 = await version('v8', base('return helper(v);').replace('int y;', 'short y;'));
    await expect(buildPatch(v1, v8, join(dir, 'p18'), { transform: 'lazy' })).rejects.toThrow(
      /type 'struct point' is transformed lazily, but 'y' \(integer narrowed \(checked\)\) can fail/,
    );
    const eager = await buildPatch(v1, v8, join(dir, 'p18e'));
    expect(eager.manifest.types.map((t) => [t.name, t.mode])).toEqual([['struct point', 'eager']]);
  }, 120_000);

  const v3Dir = () => join(dir, 'builds', 'v3');
});
