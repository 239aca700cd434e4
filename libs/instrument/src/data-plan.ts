import type { UnitAnalysis } from '@dsu/c-frontend';
import { wrapEdits, type Edit } from './edits';
import { oneLine } from './local-statics';

/**
 * Room for growth and allocation tracking (DESIGN.md §4, libs/runtime/ABI.md §10).
 *
 * Every updatable struct gets, before its closing brace,
 *   `unsigned char __dsu_room[C - 4 - R] __attribute__((aligned(A))); unsigned int __dsu_tag;`
 * where S/a are sizeof/alignof of the original fields (a copy of them, `struct __dsu_shape_<m>`,
 * is declared just before the type), A = max(a, 8), R = S rounded up to A and C the capacity:
 * R + max(32, S/4) rounded up to A by default. So sizeof is C, the room starts at R and the
 * version tag sits at C - 4 in every version. A patch compiles the new fields with the capacity
 * of the running program as a literal; a new layout that does not fit gets no room, its sizeof
 * differs from C and the runtime refuses the patch. A is at least 8 so that a struct of 4-byte
 * fields can later take a `long long`, a double or a pointer without changing its capacity.
 */
export interface DataPlanOptions {
  /** Per type key: slop in bytes, or `none` to keep the C layout (`dsu build --slop`). */
  slop?: ReadonlyMap<string, number | 'none'>;
  /** Per type key: the capacity to use instead of computing one (patches, `--layout-from`). */
  capacity?: ReadonlyMap<string, number>;
  /** Types that must keep their C layout program-wide (found by the link step). */
  keepLayout?: ReadonlySet<string>;
  /** Functions whose allocation sites are rewritten (patches: only the functions they carry). */
  selected?: (fnKey: string | undefined) => boolean;
  /** Emit the unit's `dsu_type` table entries (programs yes, patches no). Default true. */
  typeTable?: boolean;
  /**
   * Patches: record key → the symbol of the patch's stamp variable for that type, which the
   * runtime sets at commit to the type's current version tag (0: no lazy history, the checks
   * pass). The selected functions check the tag before the first concrete use of each pointer
   * (`__dsu_lz_<m>(p)`, which transforms the instance on first touch) and stamp the instances
   * they create themselves. `dsu patch` lists every type with room, so a patch applied after a
   * lazy one still checks what may be in an older layout.
   */
  lazy?: ReadonlyMap<string, { stamp: string }>;
}

export interface DataPlan {
  edits: Edit[];
  /** Types given room, by key, with how their capacity was chosen. */
  roomy: Record<string, { capacity: 'computed' | number; slop?: number }>;
  /** Types left without room and why (on top of the analysis' reasons). */
  kept: Record<string, string>;
  /** Allocation sites rewritten to the tracked entry points, by type key. */
  trackedSites: Record<string, number>;
  /** Lazy patches: tag checks and stamps inserted, by type key. */
  lazyChecks?: Record<string, { checks: number; stamps: number }>;
}

/** 64-bit FNV-1a of a type key, as `dsu_type_id()` in the runtime computes it. */
export function typeId(key: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(key, 'utf8')) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h;
}

export const typeIdLiteral = (key: string) => `0x${typeId(key).toString(16)}ULL`;

/** C-identifier form of a type key: `struct conn` → `struct_conn`. */
export const typeMangle = (key: string) => key.replace(/[^A-Za-z0-9_]/g, '_');

/** Parses `struct conn=128,struct wire=none` (comma or semicolon separated). */
export function parseSlopSpec(spec: string | undefined): Map<string, number | 'none'> {
  const out = new Map<string, number | 'none'>();
  for (const part of (spec ?? '').split(/[;,]/).map((s) => s.trim()).filter(Boolean)) {
    const m = /^(.+?)\s*=\s*(\d+|none)$/.exec(part);
    if (!m) throw new Error(`--slop '${part}' must look like 'struct conn=128' or 'struct conn=none'`);
    out.set(m[1].replace(/\s+/g, ' '), m[2] === 'none' ? 'none' : Number(m[2]));
  }
  return out;
}

/** Parses `struct conn=96;...` capacities (DSU_CAPACITY, written by `dsu build --layout-from`). */
export function parseCapacities(spec: string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const part of (spec ?? '').split(/[;,]/).map((s) => s.trim()).filter(Boolean)) {
    const m = /^(.+?)\s*=\s*(\d+)$/.exec(part);
    if (m) out.set(m[1].replace(/\s+/g, ' '), Number(m[2]));
  }
  return out;
}

export const DATA_PRELUDE = [
  'struct __dsu_type_entry_v1 { unsigned int abi; unsigned int capacity; unsigned long long id; const char *key; };',
  'extern void *__dsu_cc_tmalloc(unsigned long long, __SIZE_TYPE__, __SIZE_TYPE__) __asm__("dsu_tmalloc");',
  'extern void *__dsu_cc_tcalloc(unsigned long long, __SIZE_TYPE__, __SIZE_TYPE__, __SIZE_TYPE__) __asm__("dsu_tcalloc");',
  'extern void *__dsu_cc_trealloc(unsigned long long, __SIZE_TYPE__, void *, __SIZE_TYPE__) __asm__("dsu_trealloc");',
  'extern void *__dsu_cc_realloc(void *, __SIZE_TYPE__) __asm__("dsu_realloc");',
  'extern void __dsu_cc_free(void *) __asm__("dsu_free");',
  'extern void *__dsu_cc_lazy_memset(unsigned long long, void *, int, __SIZE_TYPE__) __asm__("dsu_lazy_memset");',
  'extern void *__dsu_cc_lazy_memcpy(unsigned long long, void *, const void *, __SIZE_TYPE__) __asm__("dsu_lazy_memcpy");',
  'extern void *__dsu_cc_lazy_memmove(unsigned long long, void *, const void *, __SIZE_TYPE__) __asm__("dsu_lazy_memmove");',
];

/** The room members for one record; `capacity` undefined = computed from the fields. */
function roomText(m: string, fields: string, slop: number | undefined, capacity: number | undefined): { before: string; inside: string } {
  const shape = `struct __dsu_shape_${m}`;
  const S = `__dsu_S_${m}`;
  const A = `__dsu_A_${m}`;
  const R = `__dsu_R_${m}`;
  const C = `__dsu_C_${m}`;
  const slopExpr = slop !== undefined ? `${slop}` : `(${S} / 4 > 32 ? (${S} + 3) / 4 : 32)`;
  const cap = capacity !== undefined ? `${capacity}` : `${R} + ((${slopExpr}) + ${A} - 1) / ${A} * ${A}`;
  const before =
    `${shape} {${fields}}; enum { ${S} = sizeof(${shape}), ${A} = _Alignof(${shape}) > 8 ? _Alignof(${shape}) : 8,` +
    ` ${R} = (${S} + ${A} - 1) / ${A} * ${A}, ${C} = ${cap} }; `;
  // A layout that does not fit keeps no room: sizeof then differs from the capacity (refused).
  const size = capacity !== undefined ? `(${R} + 4 <= ${C} ? ${C} - 4 - ${R} : 0)` : `${C} - 4 - ${R}`;
  const inside = ` unsigned char __dsu_room[${size}] __attribute__((aligned(${A}))); unsigned int __dsu_tag; `;
  return { before, inside };
}

/** Plans room edits, the unit's type table entries and tracked allocation sites. */
export function planData(a: UnitAnalysis, opts: DataPlanOptions = {}): DataPlan {
  const buf = a.preprocessed;
  const edits: Edit[] = [];
  const roomy: DataPlan['roomy'] = {};
  const kept: DataPlan['kept'] = {};
  const trackedSites: DataPlan['trackedSites'] = {};
  const entries: string[] = [];
  for (const r of a.records ?? []) {
    if (!r.updatable) continue;
    const slop = opts.slop?.get(r.key);
    if (slop === 'none') {
      kept[r.key] = 'opted out (dsu build --slop none)';
      continue;
    }
    if (opts.keepLayout?.has(r.key)) {
      kept[r.key] = 'whole instances are used as raw bytes or outside the program';
      continue;
    }
    const m = typeMangle(r.key);
    const capacity = opts.capacity?.get(r.key);
    const fields = buf.toString('latin1', r.open + 1, r.close);
    const t = roomText(m, oneLine(fields), slop ?? r.slop, capacity);
    edits.push({ start: r.declStart, end: r.declStart, text: t.before });
    // The shape (a copy of the fields) now defines the nested tags and enums; the struct names them.
    for (const n of r.nested ?? []) {
      const path = `${'*'.repeat(n.pointers)}((struct __dsu_shape_${m} *)0)->${n.member}${'[0]'.repeat(n.dimensions)}`;
      edits.push({ start: n.start, end: n.end, text: `__typeof__(${path})` });
    }
    edits.push({ start: r.close, end: r.close, text: t.inside });
    roomy[r.key] = { capacity: capacity ?? 'computed', ...(slop ?? r.slop ? { slop: (slop ?? r.slop) as number } : {}) };
    entries.push(
      `static const struct __dsu_type_entry_v1 __dsu_te_${m} __attribute__((used, section("dsu_type"), aligned(8))) =` +
        ` { 1u, sizeof(${r.spelling}), ${typeIdLiteral(r.key)}, ${JSON.stringify(r.key)} };`,
    );
  }
  // Typedef names of updatable structs allocate as their struct.
  const canonical = new Map<string, string>();
  for (const t of a.types) {
    if (t.kind === 'typedef' && t.target && roomy[t.target]) canonical.set(t.key, t.target);
    if (roomy[t.key]) canonical.set(t.key, t.key);
  }
  const spelling = new Map((a.records ?? []).map((r) => [r.key, r.spelling]));
  const selected = opts.selected ?? (() => true);
  for (const s of a.allocSites ?? []) {
    if (!selected(s.function)) continue;
    const key = s.typeKey ? canonical.get(s.typeKey) : undefined;
    const paren = buf.indexOf('(', s.callee.end);
    if (paren < 0 || paren >= s.call.end || !/^\s*$/.test(buf.toString('latin1', s.callee.end, paren))) continue;
    if (!key) {
      // untyped realloc: keeps the tracking of a tracked block
      if (s.name === 'realloc') edits.push({ start: s.callee.start, end: s.callee.end, text: '__dsu_cc_realloc' });
      continue;
    }
    const T = spelling.get(key) ?? key;
    edits.push({ start: s.callee.start, end: s.callee.end, text: `__dsu_cc_t${s.name}` });
    edits.push({ start: paren + 1, end: paren + 1, text: `${typeIdLiteral(key)}, sizeof(${T}), ` });
    trackedSites[key] = (trackedSites[key] ?? 0) + 1;
  }
  for (const f of a.freeRefs ?? []) {
    if (!selected(f.function)) continue;
    edits.push({ start: f.range.start, end: f.range.end, text: f.name === 'free' ? '__dsu_cc_free' : '__dsu_cc_realloc' });
  }
  const lazyChecks = opts.lazy?.size ? planLazy(a, opts.lazy, canonical, selected, edits) : undefined;
  edits.push({ start: 0, end: 0, text: DATA_PRELUDE.join(' ') + '\n' });
  if (entries.length && opts.typeTable !== false) edits.push({ start: buf.length, end: buf.length, text: '\n' + entries.join('\n') + '\n' });
  return { edits, roomy, kept, trackedSites, ...(lazyChecks ? { lazyChecks } : {}) };
}

/** Name of the inline tag check of a lazily transformed type in patch units. */
export const lazyCheckName = (key: string) => `__dsu_lz_${typeMangle(key)}`;

/**
 * Lazy transformation (ABI.md §10): tag checks and stamps in the selected functions.
 * - A pointer parameter or local whose value only changes by plain `=` is checked once where it
 *   gets its value (parameters at function entry, locals at their initializer and assignments);
 *   its member accesses and dereferences then need no check.
 * - Any other pointer (`a->b->c`'s `a->b`, `p++`, array elements, members of other objects) is
 *   checked where it is used; objects reached from a global (transformed eagerly at commit) or a
 *   local object (stamped) are not.
 * - Local objects (and one-dimensional local arrays without an initializer) and initializer lists
 *   of the type get the current tag; memset/memcpy/memmove
 *   into the type go through the runtime, which stamps the instances they overwrite.
 */
function planLazy(
  a: UnitAnalysis,
  lazy: ReadonlyMap<string, { stamp: string }>,
  canonicalOf: ReadonlyMap<string, string>,
  selected: (fnKey: string | undefined) => boolean,
  edits: Edit[],
): Record<string, { checks: number; stamps: number }> {
  const o = a.objects;
  const stats: Record<string, { checks: number; stamps: number }> = {};
  const canon = (t: string) => {
    let k = t;
    for (let i = 0; i < 8 && !lazy.has(k); i++) {
      const td = a.types.find((x) => x.key === k && x.kind === 'typedef');
      if (!td?.target) break;
      k = td.target;
    }
    return lazy.has(k) ? k : canonicalOf.get(t);
  };
  const lazyKey = (t: string) => {
    const k = canon(t);
    return k && lazy.has(k) ? k : undefined;
  };
  const stat = (k: string) => (stats[k] ??= { checks: 0, stamps: 0 });
  const records = new Map((a.records ?? []).map((r) => [r.key, r]));
  // the check function, right after the type's definition
  for (const [key, { stamp }] of lazy) {
    const r = records.get(key);
    if (!r) continue;
    const T = r.spelling;
    const f = lazyCheckName(key);
    edits.push({
      start: r.declEnd,
      end: r.declEnd,
      text:
        `\nextern unsigned int ${f}_v __asm__(${JSON.stringify(stamp)}); extern void ${f}_touch(void *, unsigned long long) __asm__("dsu_lazy_touch");` +
        ` static __inline__ __attribute__((always_inline, unused)) ${T} *${f}(const ${T} *p) {` +
        ` unsigned int s = __atomic_load_n(&${f}_v, __ATOMIC_RELAXED);` +
        ` if (p && s && __builtin_expect(__atomic_load_n(&p->__dsu_tag, __ATOMIC_ACQUIRE) != s, 0)) ${f}_touch((void *)p, ${typeIdLiteral(key)});` +
        ` return (${T} *)p; }\n`,
    });
  }
  if (!o) return stats;
  const bodies = new Map(a.functions.map((f) => [f.model.key, f.body]));
  const vars = new Map(o.vars.filter((v) => selected(v.function) && !v.unstable && lazyKey(v.type)).map((v) => [v.id, v]));
  const opens: Edit[] = [];
  const closes: Edit[] = [];
  const wrap = (r: { start: number; end: number }, before: string, after: string) => {
    const [open, close] = wrapEdits(r, before, after);
    opens.push(open);
    closes.push(close);
  };
  const usedVars = new Set<string>();
  for (const u of o.uses) {
    if (!selected(u.function)) continue;
    const k = lazyKey(u.type);
    if (!k || u.base.start < 0) continue;
    const f = lazyCheckName(k);
    if (u.via === 'dot') {
      if (u.root === 'global' || u.root === 'local' || u.root === 'call') continue;
      wrap(u.base, `(*${f}(&(`, `)))`);
    } else if (u.baseVar && vars.has(u.baseVar)) {
      usedVars.add(u.baseVar);
      continue;
    } else wrap(u.base, `${f}(`, `)`);
    stat(k).checks++;
  }
  for (const v of vars.values()) {
    if (!usedVars.has(v.id)) continue;
    const k = lazyKey(v.type) as string;
    const f = lazyCheckName(k);
    for (const r of v.assigns) {
      if (r.start < 0) continue;
      wrap(r, `${f}(`, `)`);
      stat(k).checks++;
    }
    const body = bodies.get(v.function);
    if (v.param && body && body.start >= 0) {
      opens.push({ start: body.start + 1, end: body.start + 1, text: ` ${f}(${v.name});` });
      stat(k).checks++;
    }
  }
  edits.push(...opens, ...closes.reverse());
  const buf = a.preprocessed;
  for (const c of o.creations) {
    if (!selected(c.function)) continue;
    const k = lazyKey(c.type);
    if (!k) continue;
    const v = `${lazyCheckName(k)}_v`;
    if (c.at !== undefined && c.at >= 0 && c.count !== undefined) {
      if (c.count > 0) edits.push({ start: c.at, end: c.at, text: ` = { [0 ... ${c.count - 1}] = { .__dsu_tag = ${v} } }` });
    } else if (c.at !== undefined && c.at >= 0) edits.push({ start: c.at, end: c.at, text: ` = { .__dsu_tag = ${v} }` });
    else if (c.close !== undefined) {
      const before = buf.toString('latin1', Math.max(0, c.close - 200), c.close).trimEnd();
      const comma = c.empty || before.endsWith(',') ? '' : ', ';
      edits.push({ start: c.close, end: c.close, text: `${comma}.__dsu_tag = ${v}` });
    } else continue;
    stat(k).stamps++;
  }
  for (const w of o.wholeWrites) {
    if (!selected(w.function)) continue;
    const k = lazyKey(w.type);
    if (!k) continue;
    const paren = buf.indexOf('(', w.callee.end);
    if (paren < 0 || paren >= w.call.end || !/^\s*$/.test(buf.toString('latin1', w.callee.end, paren))) continue;
    edits.push({ start: w.callee.start, end: w.callee.end, text: `__dsu_cc_lazy_${w.name}` });
    edits.push({ start: paren + 1, end: paren + 1, text: `${typeIdLiteral(k)}, ` });
    stat(k).stamps++;
  }
  return stats;
}
