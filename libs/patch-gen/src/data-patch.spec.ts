import type { FieldModel, ProgramModel, TypeModel } from '@dsu/c-frontend';
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
    expect(x.code).toContain('n->count = 1; /* count: default from patch.yaml */');
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
});
