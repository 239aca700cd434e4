import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findClang, type FieldModel, type ProgramModel, type TypeModel } from '@dsu/c-frontend';
import { changedNames, diffTypes, findInstances, transformerSource } from './data-patch';

const field = (name: string, type: string, offset: number, size: number): FieldModel => ({ name, type, offsetBits: offset * 8, sizeBits: size * 8 });
const struct = (key: string, fields: FieldModel[], size: number, capacity: number, extra: Partial<TypeModel> = {}): TypeModel => ({
  key,
  kind: 'struct',
  fields,
  size,
  align: 8,
  layoutHash: JSON.stringify(fields),
  capacity,
  updatable: true,
  ...extra,
});
const model = (types: TypeModel[], globals: ProgramModel['globals'] = {}): ProgramModel => ({
  format: 1,
  program: 'p',
  buildId: 'b',
  units: [],
  functions: {},
  globals,
  types: Object.fromEntries(types.map((t) => [t.key, t])),
});

const oldRec = struct('struct rec', [field('id', 'int', 0, 4), field('val', 'long long', 8, 8), field('addr', 'unsigned char[4]', 16, 4), field('next', 'struct rec *', 24, 8)], 32, 72);
const newRec = struct('struct rec', [field('id', 'int', 0, 4), field('count', 'short', 4, 2), field('val', 'int', 8, 4), field('addr', 'unsigned char[16]', 12, 16), field('next', 'struct rec *', 32, 8)], 40, 72);
const holder = struct('struct holder', [field('n', 'int', 0, 4), field('recs', 'struct rec[2]', 8, 144)], 152, 192);
const from = model([oldRec, holder, struct('struct raw', [field('a', 'int', 0, 4)], 4, 4, { updatable: false, notUpdatableReason: 'packed: its C layout must be kept' })], {
  table: { key: 'table', name: 'table', unit: 'a.c', type: 'struct rec[8]', linkage: 'external' },
  h: { key: 'a.c::h', name: 'h', unit: 'a.c', type: 'struct holder', linkage: 'internal' },
});
const to = model([newRec, holder, struct('struct raw', [field('a', 'int', 0, 4), field('b', 'int', 4, 4)], 8, 8, { updatable: false })]);
(from as ProgramModel & { instrumentation: unknown }).instrumentation = { units: [{ plan: { promotedStatics: { 'a.c::h': '__dsu_s_u1__h' } } }] };

describe('data patches', () => {
  it('finds changed types and refuses those that keep their C layout', () => {
    const d = diffTypes(from, to);
    expect(d.changed.map((c) => c.key)).toEqual(['struct rec']);
    expect(d.refusals).toEqual([expect.stringMatching(/^type 'struct raw' changes its fields but the running program keeps its C layout \(packed/)]);
  });

  it('generates a readable transformer: copy, new field zero, checked narrowing, array resize, pointers kept', () => {
    const d = diffTypes(from, to);
    const x = transformerSource(d.changed[0], from, to, changedNames(to, d.changed), 'v1', { defaults: { count: '1' } });
    expect(x.fields).toEqual([
      { field: 'id', how: 'copied' },
      { field: 'count', how: 'default 1' },
      { field: 'val', how: 'integer narrowed (checked)' },
      { field: 'addr', how: 'array resized 4 -> 16' },
      { field: 'next', how: 'copied' },
    ]);
    expect(x.code).toContain('int __dsu_xf_struct_rec__v1(void *new_obj, const void *old_obj, char *err, __SIZE_TYPE__ errlen)');
    expect(x.code).toContain('{ signed long long v; __builtin_memcpy(&v, o + 8, sizeof v); /* val: long long -> int, checked */');
    expect(x.code).toContain('does not fit');
    expect(x.code).toContain('__builtin_memcpy(n->addr, o + 16, 4 < sizeof n->addr ? 4 : sizeof n->addr);');
    // the default is patch.yaml code: marked for the program's macros (expanded when the unit is written)
    expect(x.code).toMatch(/n->count = \/\* count: default from patch.yaml \*\/\n__dsu_user_code_begin__\n1\n__dsu_user_code_end__\n {2};/);
  });

  it('uses the spec: renames and custom transformer bodies; refuses what it cannot convert', () => {
    const d = diffTypes(from, to);
    const renamed = struct('struct rec', [field('ident', 'int', 0, 4)], 4, 72);
    const x = transformerSource({ key: 'struct rec', old: oldRec, next: renamed }, from, to, new Map(), 'v1', { renames: { ident: 'id' } });
    expect(x.code).toContain("/* ident (was 'id'): same type */");
    const custom = transformerSource(d.changed[0], from, to, new Map(), 'v1', { transform: '  n->id = 42;' });
    expect(custom.code).toContain('n->id = 42;');
    const odd = struct('struct rec', [field('id', 'double', 0, 8)], 8, 72);
    expect(() => transformerSource({ key: 'struct rec', old: oldRec, next: odd }, from, to, new Map(), 'v1', undefined)).toThrow(/field 'id' changes from 'int' to 'double'/);
  });

  it('treats a container whose member moved (an embedded struct needs more alignment) as changed, and warns about room the new alignment cannot use', () => {
    // struct point { int x; } (align 4, 36 bytes reserved) -> { long long x; } (align 8): struct shape's fields keep
    // their names and types, but 'origin' moves from offset 4 to 8, so shape is transformed (nested) too.
    const p1 = struct('struct point', [field('x', 'int', 0, 4)], 4, 36, { align: 4 });
    const p2 = struct('struct point', [field('x', 'long long', 0, 8)], 8, 36, { align: 8 });
    const s1 = struct('struct shape', [field('kind', 'int', 0, 4), field('origin', 'struct point', 4, 36)], 40, 72, { align: 4 });
    const s2 = struct('struct shape', [field('kind', 'int', 0, 4), field('origin', 'struct point', 8, 36)], 44, 72);
    const a = model([p1, s1], { shapes: { key: 'shapes', name: 'shapes', unit: 'a.c', type: 'struct shape[3]', linkage: 'external' } });
    const b = model([p2, s2]);
    const d = diffTypes(a, b);
    expect(d.changed.map((c) => c.key)).toEqual(['struct point', 'struct shape']);
    expect(d.notes).toEqual([expect.stringMatching(/^type 'struct point' needs 8-byte alignment in the new version, but the running program reserved 36 bytes for it/)]);
    const x = transformerSource(d.changed[1], a, b, changedNames(b, d.changed), 'v1', undefined);
    expect(x.fields).toEqual([
      { field: 'kind', how: 'copied' },
      { field: 'origin', how: 'nested transformer of struct point' },
    ]);
    expect(x.code).toContain('if (__dsu_xf_struct_point__v1(&n->origin, o + 4, err, errlen) != 0) return -1;');
    // the points live inside the changed shapes: only the shapes are listed as instances
    expect(findInstances('struct point', a as never, changedNames(a, d.changed)).ranges).toEqual([]);
    expect(findInstances('struct shape', a as never, changedNames(a, d.changed)).ranges).toEqual([{ what: 'global shapes', symbol: 'shapes', offset: 0, count: 3 }]);
  });

  it('finds instances in globals, in members of unchanged globals and in heap containers', () => {
    const names = changedNames(from, diffTypes(from, to).changed);
    const inst = findInstances('struct rec', from as never, names);
    expect(inst.ranges).toEqual([
      { what: 'global table', symbol: 'table', offset: 0, count: 8 },
      { what: 'global a.c::h', symbol: '__dsu_s_u1__h', offset: 8, count: 2 },
    ]);
    expect(inst.embeds).toEqual([{ container: 'struct holder', capacity: 192, offset: 8, count: 2 }]);
    expect(inst.notes).toEqual([]);
  });

  it('shrinks an array only when the dropped elements are zero (checked, so never lazily)', () => {
    const before = struct('struct tagbuf', [field('tag', 'unsigned char[8]', 0, 8)], 8, 40);
    const after = struct('struct tagbuf', [field('tag', 'unsigned char[4]', 0, 4)], 4, 40);
    const from = model([before]);
    const to = model([after]);
    const d = diffTypes(from, to);
    const x = transformerSource(d.changed[0], from, to, changedNames(to, d.changed), 'v1', undefined);
    expect(x.fields).toEqual([{ field: 'tag', how: 'array shrunk 8 -> 4 (checked: dropped elements must be zero)' }]);
    const dir = mkdtempSync(join(tmpdir(), 'dsu-shrink-'));
    try {
      writeFileSync(
        join(dir, 'p.c'),
        `#include <stdio.h>\nstruct tagbuf { unsigned char tag[4]; };\n${x.code}\n` +
          `int main(void) { unsigned char img[40] = { 1, 2, 3, 4 }; struct tagbuf n = { { 0 } }; char err[200] = "";\n` +
          `  int a = __dsu_xf_struct_tagbuf__v1(&n, img, err, sizeof err); printf("%d %d%d%d%d\\n", a, n.tag[0], n.tag[1], n.tag[2], n.tag[3]);\n` +
          `  img[6] = 9; int b = __dsu_xf_struct_tagbuf__v1(&n, img, err, sizeof err); printf("%d %s\\n", b, err); return 0; }\n`,
      );
      execFileSync(findClang().path, ['-O1', '-Wall', '-o', join(dir, 'p'), join(dir, 'p.c')]);
      expect(execFileSync(join(dir, 'p'), { encoding: 'utf8' }).split('\n')).toEqual([
        '0 1234',
        "-1 struct tagbuf.tag: elements beyond the new length 4 are not empty (give a custom transformer for 'tag' in patch.yaml to drop them)",
        '',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('bit-fields', () => {
    const bf = (name: string, type: string, offsetBits: number, width: number): FieldModel => ({ name, type, offsetBits, sizeBits: width, bitfield: true });
    // x86-64 SysV layouts of the two C definitions in the program below
    const oldFlags = struct('struct flags', [bf('a', 'unsigned int', 0, 3), bf('b', 'int', 3, 5), bf('c', 'unsigned int', 8, 24), field('d', 'long long', 8, 8), bf('e', 'int', 128, 7)], 24, 48);
    const newFlags = struct('struct flags', [bf('b', 'int', 0, 12), bf('a', 'unsigned int', 12, 3), field('c', 'long long', 8, 8), bf('d', 'unsigned int', 128, 4), bf('e', 'int', 132, 3)], 24, 48);
    const program = (xf: string) => `
      #include <stdio.h>
      #include <string.h>
      struct flags_old { unsigned a : 3; int b : 5; unsigned c : 24; long long d; int e : 7; };
      struct flags { int b : 12; unsigned a : 3; long long c; unsigned d : 4; int e : 3; };
      ${xf}
      int main(void) {
        struct flags_old o; memset(&o, 0, sizeof o);
        o.a = 5; o.b = -9; o.c = 0xabcdef; o.d = 11; o.e = -3;
        unsigned char img[48] = {0}; memcpy(img, &o, sizeof o);
        struct flags n; memset(&n, 0, sizeof n); char err[200] = "";
        int r = __dsu_xf_struct_flags__v1(&n, img, err, sizeof err);
        printf("%d %u %d %lld %u %d\\n", r, n.a, n.b, n.c, n.d, n.e);
        o.d = 99; memcpy(img, &o, sizeof o);
        r = __dsu_xf_struct_flags__v1(&n, img, err, sizeof err);
        printf("%d %s\\n", r, err);
        o.d = 1; o.e = -40; memcpy(img, &o, sizeof o);
        r = __dsu_xf_struct_flags__v1(&n, img, err, sizeof err);
        printf("%d %s\\n", r, err);
        return 0;
      }`;

    it('are converted by bit offset and width, sign-extended, widened or checked', () => {
      const from = model([oldFlags]);
      const to = model([newFlags]);
      const d = diffTypes(from, to);
      expect(d.refusals).toEqual([]);
      const x = transformerSource(d.changed[0], from, to, changedNames(to, d.changed), 'v1', undefined);
      expect(x.fields).toEqual([
        { field: 'b', how: 'bit-field -> bit-field' },
        { field: 'a', how: 'bit-field -> bit-field' },
        { field: 'c', how: 'bit-field -> integer' },
        { field: 'd', how: 'integer -> bit-field (checked)' },
        { field: 'e', how: 'bit-field -> bit-field (checked)' },
      ]);
      const dir = mkdtempSync(join(tmpdir(), 'dsu-bitfields-'));
      try {
        writeFileSync(join(dir, 'p.c'), program(x.code));
        execFileSync(findClang().path, ['-O1', '-Wall', '-o', join(dir, 'p'), join(dir, 'p.c')]);
        const out = execFileSync(join(dir, 'p'), { encoding: 'utf8' }).split('\n');
        expect(out[0]).toBe(`0 5 -9 ${0xabcdef} 11 -3`);
        expect(out[1]).toBe("-1 struct flags.d: value 99 does not fit 'unsigned int:4'");
        expect(out[2]).toBe("-1 struct flags.e: value -40 does not fit 'int:3'");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('are refused when the running layout of one is unknown', () => {
      const unknown = struct('struct flags', [bf('a', 'unsigned int', -1, 3), field('d', 'long long', 8, 8)], 16, 48);
      expect(diffTypes(model([unknown]), model([newFlags])).refusals).toEqual([expect.stringContaining("bit offset of bit-field 'a' in the running program is unknown")]);
    });
  });
});

