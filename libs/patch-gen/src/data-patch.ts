import type { FrameOverride } from '@dsu/frame-map';
import type { FieldModel, ProgramModel, TypeModel } from '@dsu/c-frontend';
import { typeIdLiteral, typeMangle } from '@dsu/instrument';
import { userCode } from './user-code';
import type { WhenConditions } from '@dsu/patch-format';

/**
 * Data changes of a patch (DESIGN.md §4–§5): which struct layouts change, the C transformers
 * that carry every live instance from the old layout to the new one, where the instances live
 * (globals by symbol, heap blocks by type id, members of other types), and which functions must
 * be in the patch because they use a changed type concretely.
 */

/** What the user's patch.yaml may say about one type (`dsu patch --spec`). */
export interface TypeSpec {
  /** new field name → old field name */
  renames?: Record<string, string>;
  /** new field name → C expression (the field's value in every instance) */
  defaults?: Record<string, string>;
  /** A custom transformer body: `n` is the new instance (typed), `o` the old image (`const unsigned char *`). */
  transform?: string;
  /**
   * new field name → C statements that set it; `n` and `o` as above, and `old` points at the old
   * field's bytes (same name, or the rename's) when there is one.
   */
  fields?: Record<string, string>;
  /** How this type's instances are transformed; default: the patch's `--transform` (eager). */
  mode?: 'eager' | 'lazy';
}

export interface DataSpec {
  types?: Record<string, TypeSpec>;
  /** new global key → old global key (value carried over) */
  globalRenames?: Record<string, string>;
  /** C body of `int f(char *err, size_t errlen)` run once after the instances are transformed. */
  stateTransformer?: string;
  /** When the update may happen (the analysis and the runtime enforce it; see WhenConditions). */
  when?: WhenConditions;
  /** Stack-frame maps by function name or key: where old frames resume, where new locals come from. */
  frames?: Record<string, FrameOverride>;
}

export interface TypeChange {
  key: string;
  old: TypeModel;
  next: TypeModel;
}

export interface DataDiff {
  changed: TypeChange[];
  /** Changes a patch cannot carry, with the reason. */
  refusals: string[];
  /** Findings reported in the manifest (not fatal). */
  notes: string[];
}

// Offsets are part of the signature: a struct whose fields keep their names and types still
// changes its layout when an embedded updatable struct needs a stricter alignment in the new
// version (`struct point { int x; }` -> `{ long long x; }` moves `origin` in `struct shape`).
const fieldSig = (t: TypeModel) =>
  JSON.stringify(t.fields.map((f) => [f.name, f.type, !!f.bitfield, f.offsetBits]));
const hasRoom = (t: TypeModel) => t.updatable && t.capacity > t.size;
const isRecord = (t: TypeModel) =>
  t.kind === 'struct' || t.kind === 'union' || (t.kind === 'typedef' && t.fields.length > 0);

/** Types whose fields changed between the versions (by name and type; offsets follow). */
export function diffTypes(from: ProgramModel, to: ProgramModel): DataDiff {
  const out: DataDiff = { changed: [], refusals: [], notes: [] };
  for (const [key, next] of Object.entries(to.types)) {
    const old = from.types[key];
    if (!old || !isRecord(old) || !isRecord(next) || fieldSig(old) === fieldSig(next)) continue;
    if (!hasRoom(old)) {
      out.refusals.push(
        `type '${key}' changes its fields but the running program keeps its C layout (${old.notUpdatableReason ?? 'no room reserved'}); restart with the new version, or give the type room`,
      );
      continue;
    }
    if (!next.updatable) {
      out.refusals.push(
        `type '${key}' changes its fields but is not updatable in the new version: ${next.notUpdatableReason ?? 'no room reserved'}`,
      );
      continue;
    }
    const unplaced = old.fields.filter((f) => f.bitfield && f.offsetBits < 0);
    if (unplaced.length > 0) {
      out.refusals.push(
        `type '${key}': the bit offset of bit-field ${unplaced.map((f) => `'${f.name}'`).join(', ')} in the running program is unknown (clang's record layout dump did not list it); give a custom transformer in patch.yaml`,
      );
      continue;
    }
    if (next.align > 0 && old.capacity % next.align !== 0) {
      out.notes.push(
        `type '${key}' needs ${next.align}-byte alignment in the new version, but the running program reserved ${old.capacity} bytes for it (not a multiple of ${next.align}); the runtime will refuse the update (restart once with room that is a multiple of ${next.align}, e.g. a 'long' or pointer field in the type)`,
      );
    }
    out.changed.push({ key, old, next });
  }
  for (const t of out.changed) for (const n of t.old.untrackedSources ?? []) out.notes.push(n);
  return out;
}

/** Type keys that name a changed type: the keys themselves and typedefs of them. */
export function changedNames(model: ProgramModel, changed: readonly TypeChange[]): Map<string, string> {
  const names = new Map<string, string>();
  for (const c of changed) names.set(c.key, c.key);
  for (const t of Object.values(model.types)) {
    if (t.kind === 'typedef' && t.target && names.has(t.target))
      names.set(t.key, names.get(t.target) as string);
  }
  return names;
}

/**
 * `const struct node[4][2]` → { base: 'struct node', count: 8 }; not an array → count 1. Qualifiers
 * are dropped: the base names the type whose layout matters.
 */
export function arrayOf(type: string): { base: string; count: number } {
  let base = type
    .replace(/\b(const|volatile)\b/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  let count = 1;
  for (;;) {
    const m = /^(.*?)\s*\[(\d+)\]$/.exec(base);
    if (!m) break;
    base = m[1].trim();
    count *= Number(m[2]);
  }
  return { base, count };
}

const INT_SPELLINGS: Record<string, { size: number; signed: boolean }> = {};
for (const [names, size, signed] of [
  [['char', 'signed char', 'int8_t'], 1, true],
  [['unsigned char', 'uint8_t', '_Bool', 'bool'], 1, false],
  [['short', 'short int', 'signed short', 'int16_t'], 2, true],
  [['unsigned short', 'unsigned short int', 'uint16_t'], 2, false],
  [['int', 'signed', 'signed int', 'int32_t'], 4, true],
  [['unsigned', 'unsigned int', 'uint32_t'], 4, false],
  [
    [
      'long',
      'long int',
      'long long',
      'long long int',
      'int64_t',
      'ssize_t',
      'intptr_t',
      'ptrdiff_t',
      'off_t',
      'time_t',
      'intmax_t',
    ],
    8,
    true,
  ],
  [
    [
      'unsigned long',
      'unsigned long int',
      'unsigned long long',
      'unsigned long long int',
      'uint64_t',
      'size_t',
      'uintptr_t',
      'uintmax_t',
    ],
    8,
    false,
  ],
] as [string[], number, boolean][]) {
  for (const n of names) INT_SPELLINGS[n] = { size, signed };
}

/** Size and signedness of an integer (or enum, or typedef of one) type; undefined for anything else. */
export function intInfo(model: ProgramModel, type: string): { size: number; signed: boolean } | undefined {
  let t = type
    .replace(/\b(const|volatile)\b/g, '')
    .replace(/\s+/g, ' ')
    .trim();
  for (let i = 0; i < 8; i++) {
    if (INT_SPELLINGS[t]) return INT_SPELLINGS[t];
    const m = model.types[t];
    if (m?.kind === 'enum') return { size: m.size || 4, signed: true };
    if (m?.kind === 'typedef' && m.target) t = m.target;
    else return undefined;
  }
  return undefined;
}

/**
 * The C spelling of a type key: a type a unit defines for itself (the same name defined
 * differently in several units) is keyed `src/dhcp.c::struct iface_param`, spelled without its unit.
 */
export const cSpelling = (key: string): string => (key.includes('::') ? key.slice(key.lastIndexOf('::') + 2) : key);

/** The C spelling of an integer type of that size and signedness. */
export const C_INT = (i: { size: number; signed: boolean }) =>
  `${i.signed ? 'signed' : 'unsigned'} ${{ 1: 'char', 2: 'short', 4: 'int', 8: 'long long' }[i.size] ?? 'long long'}`;

export const transformerName = (key: string, suffix: string) => `__dsu_xf_${typeMangle(key)}__${suffix}`;
export const typeDescName = (key: string, suffix: string) => `__dsu_pt_${typeMangle(key)}__${suffix}`;

/** How each new field gets its value (for the manifest and the generated comments). */
export interface FieldPlan {
  field: string;
  how: string;
}

/**
 * The readable C transformer of one changed type, written into the patch unit that defines the
 * type (where the new layout is in scope). Throws with the field and both types when a field
 * cannot be converted automatically and the spec gives no custom transformer.
 */
export function transformerSource(
  c: TypeChange,
  from: ProgramModel,
  to: ProgramModel,
  changed: ReadonlyMap<string, string>,
  suffix: string,
  spec: TypeSpec | undefined,
  lazy: ReadonlySet<string> = new Set(),
): { code: string; fields: FieldPlan[] } {
  const name = transformerName(c.key, suffix);
  const T = cSpelling(c.key);
  const head = [
    `/* ${c.key}: fields use ${c.old.size} bytes in the running program, ${c.next.size} in the new version; ${c.old.capacity} bytes are reserved.`,
    ` * n: the new instance (zeroed), o: a copy of the old image. Return -1 with a message in err to refuse the update. */`,
    `int ${name}(void *new_obj, const void *old_obj, char *err, __SIZE_TYPE__ errlen) {`,
    `  ${T} *n = (${T} *)new_obj;`,
    `  const unsigned char *o = (const unsigned char *)old_obj;`,
    `  (void)n; (void)o; (void)err; (void)errlen;`,
  ];
  const fields: FieldPlan[] = [];
  if (spec?.transform) {
    fields.push(...c.next.fields.map((f) => ({ field: f.name, how: 'custom transformer (patch.yaml)' })));
    return {
      code: [
        ...head,
        `  /* custom transformer from patch.yaml */`,
        userCode(spec.transform.trimEnd()),
        '  return 0;',
        '}',
        '',
      ].join('\n'),
      fields,
    };
  }
  const body: string[] = [];
  const oldByName = new Map<string, FieldModel>(c.old.fields.map((f) => [f.name, f]));
  for (const f of c.next.fields) {
    if (f.name.includes('.')) continue; // members of anonymous members are copied through their parent path
    const def = spec?.defaults?.[f.name];
    const from_ = spec?.renames?.[f.name] ?? f.name;
    const of = oldByName.get(from_);
    const off = of ? of.offsetBits / 8 : 0;
    const renamed = from_ !== f.name ? ` (was '${from_}')` : '';
    const code = spec?.fields?.[f.name];
    if (code !== undefined) {
      body.push(`  { /* ${f.name}${renamed}: from patch.yaml */`);
      if (of)
        body.push(
          `    const unsigned char *old = o + ${off}; (void)old; /* old '${from_}': ${of.type}, ${of.sizeBits / 8} bytes */`,
        );
      body.push(
        ...userCode(code.trimEnd())
          .split('\n')
          .map((l) => `    ${l}`),
        '  }',
      );
      fields.push({ field: f.name, how: 'custom (patch.yaml)' });
      continue;
    }
    if (def !== undefined) {
      body.push(`  n->${f.name} = /* ${f.name}: default from patch.yaml */`, userCode(def), '  ;');
      fields.push({ field: f.name, how: `default ${def}` });
      continue;
    }
    if (!of) {
      body.push(`  /* ${f.name}: new field, stays zero */`);
      fields.push({ field: f.name, how: 'new, zero' });
      continue;
    }
    if (of.bitfield || f.bitfield) {
      const conv = bitfieldConversion(c.key, f, of, from, to, renamed);
      if (conv) {
        body.push(...conv.code);
        fields.push({ field: f.name, how: conv.how });
        continue;
      }
      throw new Error(
        `cannot generate the transformer of '${c.key}': bit-field '${f.name}' changes from '${of.type}' to '${f.type}' (only integer and enum bit-fields are converted); ` +
          `give a custom transformer or a default for it in patch.yaml`,
      );
    }
    const oldBytes = of.sizeBits / 8;
    const oa = arrayOf(of.type);
    const na = arrayOf(f.type);
    const nested = changed.get(na.base);
    if (nested && changed.get(oa.base) === nested && lazy.has(nested)) {
      // a lazily transformed member keeps its old image and its tag: it is transformed on its
      // own first touch (its accesses are checked like any other instance's)
      const k = Math.min(na.count, oa.count);
      body.push(
        `  __builtin_memcpy(&n->${f.name}, o + ${off}, ${k} * sizeof(${cSpelling(nested)})); /* ${f.name}${renamed}: ${nested}, transformed lazily on first touch */`,
      );
      fields.push({ field: f.name, how: `kept, ${nested} transformed lazily` });
      continue;
    }
    if (nested && changed.get(oa.base) === nested) {
      const oldElem = from.types[nested]?.capacity ?? 0;
      const xf = transformerName(nested, suffix);
      if (na.count === 1 && oa.count === 1) {
        body.push(
          `  if (${xf}(&n->${f.name}, o + ${off}, err, errlen) != 0) return -1; /* ${f.name}${renamed}: nested ${nested} */`,
        );
      } else {
        const k = Math.min(na.count, oa.count);
        body.push(
          `  for (int i = 0; i < ${k}; i++) /* ${f.name}${renamed}: array of ${nested}, ${oa.count} -> ${na.count} */`,
          `    if (${xf}((${cSpelling(nested)} *)&n->${f.name} + i, o + ${off} + i * ${oldElem}, err, errlen) != 0) return -1;`,
        );
      }
      fields.push({ field: f.name, how: `nested transformer of ${nested}` });
      continue;
    }
    if (of.type === f.type) {
      body.push(
        `  __builtin_memcpy(&n->${f.name}, o + ${off}, sizeof n->${f.name}); /* ${f.name}${renamed}: same type */`,
      );
      fields.push({ field: f.name, how: 'copied' });
      continue;
    }
    if (/\*$/.test(of.type.trim()) && /\*$/.test(f.type.trim())) {
      body.push(
        `  __builtin_memcpy(&n->${f.name}, o + ${off}, sizeof(void *)); /* ${f.name}${renamed}: pointer kept (${of.type} -> ${f.type}) */`,
      );
      fields.push({ field: f.name, how: 'pointer kept' });
      continue;
    }
    if (oa.count > 1 || na.count > 1) {
      if (oa.base === na.base && oa.count > 1 && na.count > 1) {
        body.push(
          `  __builtin_memcpy(n->${f.name}, o + ${off}, ${oldBytes} < sizeof n->${f.name} ? ${oldBytes} : sizeof n->${f.name}); /* ${f.name}${renamed}: array ${oa.count} -> ${na.count}, copied, rest zero */`,
        );
        if (na.count < oa.count) {
          // A shorter array must not lose data silently: the dropped elements must be zero.
          body.push(
            `  for (__SIZE_TYPE__ i = sizeof n->${f.name}; i < ${oldBytes}; i++) /* ${f.name}: elements ${na.count}..${oa.count - 1} are dropped */`,
            `    if (o[${off} + i]) {`,
            `      __builtin_snprintf(err, errlen, "${c.key}.${f.name}: elements beyond the new length ${na.count} are not empty (give a custom transformer for '${f.name}' in patch.yaml to drop them)");`,
            `      return -1;`,
            `    }`,
          );
          fields.push({
            field: f.name,
            how: `array shrunk ${oa.count} -> ${na.count} (checked: dropped elements must be zero)`,
          });
        } else fields.push({ field: f.name, how: `array resized ${oa.count} -> ${na.count}` });
        continue;
      }
    }
    const oi = intInfo(from, of.type);
    const ni = intInfo(to, f.type);
    if (oi && ni && oa.count === 1 && na.count === 1) {
      const ot = C_INT(oi);
      const narrowing = ni.size < oi.size || ni.signed !== oi.signed;
      body.push(
        `  { ${ot} v; __builtin_memcpy(&v, o + ${off}, sizeof v); /* ${f.name}${renamed}: ${of.type} -> ${f.type}${narrowing ? ', checked' : ', widened'} */`,
      );
      body.push(`    n->${f.name} = (__typeof__(n->${f.name}))v;`);
      if (narrowing) {
        body.push(
          `    if ((${ot})n->${f.name} != v || ((n->${f.name} < 0) != (v < 0))) {`,
          `      __builtin_snprintf(err, errlen, "${c.key}.${f.name}: value %lld does not fit '${f.type}'", (long long)v);`,
          `      return -1;`,
          `    }`,
        );
      }
      body.push('  }');
      fields.push({ field: f.name, how: narrowing ? 'integer narrowed (checked)' : 'integer widened' });
      continue;
    }
    throw new Error(
      `cannot generate the transformer of '${c.key}': field '${f.name}' changes from '${of.type}' to '${f.type}'; ` +
        `give a custom transformer (types: { '${c.key}': { transform: ... } }) or a default for it in patch.yaml`,
    );
  }
  return { code: [...head, ...body, '  return 0;', '}', ''].join('\n'), fields };
}

/**
 * Integer (or enum) fields where either side is a bit-field: the old value is extracted from the
 * old image by bit offset and width (x86-64 bit-fields are allocated from the least significant
 * bit, little-endian), sign-extended for signed types, and assigned by name (C truncates bit-fields
 * on assignment, so a conversion that can lose bits is checked by reading the field back).
 */
function bitfieldConversion(
  key: string,
  f: FieldModel,
  of: FieldModel,
  from: ProgramModel,
  to: ProgramModel,
  renamed: string,
): { code: string[]; how: string } | undefined {
  const oi = intInfo(from, of.type);
  const ni = intInfo(to, f.type);
  if (!oi || !ni || arrayOf(of.type).count !== 1 || arrayOf(f.type).count !== 1) return undefined;
  const oldBits = of.bitfield ? of.sizeBits : oi.size * 8;
  const newBits = f.bitfield ? f.sizeBits : ni.size * 8;
  // Lossless when the new field has at least as many value bits for the old field's range.
  const lossless =
    oi.signed === ni.signed ? newBits >= oldBits : !oi.signed && ni.signed && newBits > oldBits;
  const vt = oi.signed ? 'signed long long' : 'unsigned long long';
  const what = `${f.name}${renamed}: ${of.type}${of.bitfield ? `:${oldBits}` : ''} -> ${f.type}${f.bitfield ? `:${newBits}` : ''}`;
  const code: string[] = [];
  if (of.bitfield) {
    const byte = Math.floor(of.offsetBits / 8);
    const shift = of.offsetBits % 8;
    const bytes = Math.ceil((shift + oldBits) / 8);
    const mask = oldBits >= 64 ? '~0ULL' : `0x${((1n << BigInt(oldBits)) - 1n).toString(16)}ULL`;
    code.push(
      `  { /* ${what}${lossless ? '' : ', checked'}; old bits ${of.offsetBits}..${of.offsetBits + oldBits - 1} */`,
      `    unsigned __int128 bits = 0; __builtin_memcpy(&bits, o + ${byte}, ${bytes});`,
      `    unsigned long long u = (unsigned long long)(bits >> ${shift}) & ${mask};`,
    );
    if (oi.signed && oldBits < 64) code.push(`    if (u >> ${oldBits - 1}) u |= ~${mask}; /* sign-extend */`);
    code.push(`    ${vt} v = (${vt})u;`);
  } else {
    code.push(
      `  { /* ${what}${lossless ? '' : ', checked'} */`,
      `    ${C_INT(oi)} v; __builtin_memcpy(&v, o + ${of.offsetBits / 8}, sizeof v);`,
    );
  }
  code.push(`    n->${f.name} = v;`);
  if (!lossless) {
    code.push(
      `    if (n->${f.name} != v || ((n->${f.name} < 0) != (v < 0))) {`,
      `      __builtin_snprintf(err, errlen, "${key}.${f.name}: value %lld does not fit '${f.type}${f.bitfield ? `:${newBits}` : ''}'", (long long)v);`,
      `      return -1;`,
      `    }`,
    );
  }
  code.push('  }');
  return {
    code,
    how: `${of.bitfield ? 'bit-field' : 'integer'} -> ${f.bitfield ? 'bit-field' : 'integer'}${lossless ? '' : ' (checked)'}`,
  };
}

export interface InstanceRange {
  what: string;
  symbol: string;
  offset: number;
  count: number;
}
export interface InstanceEmbed {
  container: string;
  capacity: number;
  offset: number;
  count: number;
}

/**
 * Where the running program keeps instances of a changed type besides its own heap blocks:
 * globals (and static locals) of the type or arrays of it, members of unchanged types inside
 * globals, and members of unchanged types' heap blocks. Instances inside changed types are the
 * business of those types' transformers. Unfindable places are returned as notes.
 */
export function findInstances(
  key: string,
  from: ProgramModel & {
    instrumentation?: { units: { plan: { promotedStatics?: Record<string, string> } }[] };
  },
  changed: ReadonlyMap<string, string>,
): { ranges: InstanceRange[]; embeds: InstanceEmbed[]; notes: string[] } {
  const ranges: InstanceRange[] = [];
  const embeds: InstanceEmbed[] = [];
  const notes: string[] = [];
  const promoted: Record<string, string> = {};
  for (const u of from.instrumentation?.units ?? []) Object.assign(promoted, u.plan.promotedStatics ?? {});
  const canon = (t: string) => {
    const b = t
      .replace(/\b(const|volatile)\b/g, '')
      .replace(/\s+/g, ' ')
      .trim();
    const m = from.types[b];
    return m?.kind === 'typedef' && m.target && from.types[m.target] && !m.fields.length ? m.target : b;
  };
  // paths to instances of `key` inside type `t` (through unchanged types only)
  const memo = new Map<string, { offset: number; count: number }[]>();
  const inside = (t: string, depth = 0): { offset: number; count: number }[] => {
    if (memo.has(t)) return memo.get(t) as { offset: number; count: number }[];
    const out: { offset: number; count: number }[] = [];
    const m = from.types[t];
    if (!m || depth > 16) return out;
    for (const f of m.fields) {
      const { base, count } = arrayOf(f.type);
      const b = canon(base);
      const off = f.offsetBits / 8;
      if (b === key) out.push({ offset: off, count });
      else if (!changed.has(b) && from.types[b]) {
        const elem = from.types[b].capacity || from.types[b].size;
        for (let i = 0; i < count; i++)
          for (const p of inside(b, depth + 1))
            out.push({ offset: off + i * elem + p.offset, count: p.count });
      }
    }
    memo.set(t, out);
    return out;
  };
  for (const g of Object.values(from.globals)) {
    const { base, count } = arrayOf(g.type);
    const b = canon(base);
    const symbol = g.linkage === 'external' ? g.name : promoted[g.key];
    const places: { offset: number; count: number }[] = [];
    if (b === key) places.push({ offset: 0, count });
    else if (!changed.has(b) && from.types[b]) {
      const elem = from.types[b].capacity || from.types[b].size;
      for (let i = 0; i < count; i++)
        for (const p of inside(b)) places.push({ offset: i * elem + p.offset, count: p.count });
    }
    if (places.length === 0) continue;
    if (!symbol) {
      notes.push(
        `instances of '${key}' in '${g.key}' cannot be found (the static was not given an exported name); they keep the old layout`,
      );
      continue;
    }
    for (const p of places)
      ranges.push({ what: `global ${g.key}`, symbol, offset: p.offset, count: p.count });
  }
  for (const t of Object.values(from.types)) {
    if (t.key === key || changed.has(t.key) || !isRecord(t)) continue;
    const places = inside(t.key);
    if (places.length === 0) continue;
    if (!hasRoom(t)) {
      notes.push(
        `instances of '${key}' inside heap blocks of '${t.key}' cannot be found ('${t.key}' is not tracked: ${t.notUpdatableReason ?? 'no room'})`,
      );
      continue;
    }
    for (const p of places)
      embeds.push({ container: t.key, capacity: t.capacity, offset: p.offset, count: p.count });
  }
  return { ranges, embeds, notes };
}

/** C declarations of the runtime's descriptor structs (dsu.h shapes), for patch units. */
export const DATA_DESC_PRELUDE = [
  'struct __dsu_patch_range_v1 { const char *what; void *base; unsigned long long count; };',
  'struct __dsu_patch_embed_v1 { const char *container_key; unsigned long long container_id; unsigned int container_capacity; unsigned long long offset; unsigned long long count; };',
  'struct __dsu_patch_type_v1 { const char *key; unsigned long long id; unsigned int capacity, old_size, new_size, new_sizeof, mode;',
  '  int (*transform)(void *, const void *, char *, __SIZE_TYPE__); unsigned int nranges; const struct __dsu_patch_range_v1 *ranges;',
  '  unsigned int nembeds; const struct __dsu_patch_embed_v1 *embeds; unsigned int *lazy_stamp; };',
].join('\n');

/** The per-type descriptor (ABI.md §10), in the patch unit that defines the new layout. */
/** The stamp variable of a lazily transformed type (defined in patch.c, set by the runtime at commit). */
export const lazyStampName = (key: string, suffix: string) => `__dsu_lzv_${typeMangle(key)}__${suffix}`;

export function typeDescriptorSource(
  c: TypeChange,
  suffix: string,
  inst: { ranges: InstanceRange[]; embeds: InstanceEmbed[] },
  mode: 'eager' | 'lazy' = 'eager',
): string {
  const m = `${typeMangle(c.key)}__${suffix}`;
  const syms = [...new Set(inst.ranges.map((r) => r.symbol))];
  const symVar = (s: string) => `__dsu_gsym_${m}_${syms.indexOf(s)}`;
  const lines = [
    ...syms.map((s) => `extern unsigned char ${symVar(s)}[] __asm__(${JSON.stringify(s)});`),
    `static const struct __dsu_patch_range_v1 __dsu_pr_${m}[] = {`,
    ...inst.ranges.map(
      (r) => `  { ${JSON.stringify(r.what)}, ${symVar(r.symbol)} + ${r.offset}, ${r.count} },`,
    ),
    inst.ranges.length ? '' : '  { 0, 0, 0 }',
    '};',
    `static const struct __dsu_patch_embed_v1 __dsu_pe_${m}[] = {`,
    ...inst.embeds.map(
      (e) =>
        `  { ${JSON.stringify(e.container)}, ${typeIdLiteral(e.container)}, ${e.capacity}, ${e.offset}, ${e.count} },`,
    ),
    inst.embeds.length ? '' : '  { 0, 0, 0, 0, 0 }',
    '};',
    ...(mode === 'lazy' ? [`extern unsigned int ${lazyStampName(c.key, suffix)};`] : []),
    `const struct __dsu_patch_type_v1 ${typeDescName(c.key, suffix)} = {`,
    `  ${JSON.stringify(c.key)}, ${typeIdLiteral(c.key)}, ${c.old.capacity}u, ${c.old.size}u,`,
    `  (unsigned int)__builtin_offsetof(${cSpelling(c.key)}, __dsu_room), (unsigned int)sizeof(${cSpelling(c.key)}), ${mode === 'lazy' ? '2u /* lazy */' : '1u /* eager */'},`,
    `  ${transformerName(c.key, suffix)}, ${inst.ranges.length}u, __dsu_pr_${m}, ${inst.embeds.length}u, __dsu_pe_${m},`,
    `  ${mode === 'lazy' ? `&${lazyStampName(c.key, suffix)}` : '0'} };`,
  ];
  return lines.filter((l) => l !== '').join('\n') + '\n';
}
