import type { UnitAnalysis, UnitFunction } from '@dsu/c-frontend';
import { declaratorEnd, findToken, outermostLoopBodyStart } from './c-scan';
import type { Edit } from './edits';
import { localStaticName, oneLine, renameLocalStatic, textWithEdits } from './local-statics';
import { FRAME_PRELUDE, planFrames, type FrameCodeOptions, type FramePlan, type InsertedPoint } from './frame-code';

/** An update point configured without touching the source: `serve:loop`, `main:entry`. */
export interface ConfiguredUpdatePoint {
  function: string;
  where: 'entry' | 'loop';
}

export function parseUpdatePointSpec(spec: string): ConfiguredUpdatePoint {
  const m = /^([A-Za-z_][A-Za-z0-9_]*):(entry|loop)$/.exec(spec);
  if (!m) throw new Error(`--update-point '${spec}' must look like FUNCTION:entry or FUNCTION:loop`);
  return { function: m[1], where: m[2] as 'entry' | 'loop' };
}

export interface PlannedFunction {
  key: string;
  /** C-identifier form of the key: `name`, or `<unit id>__name` for statics. */
  mangled: string;
  slot: string;
  impl: string;
}

export interface UnitPlan {
  edits: Edit[];
  functions: PlannedFunction[];
  /** Functions left as they are, with the reason (they cannot be updated). */
  skipped: { key: string; reason: string }[];
  /** Statics promoted to exported symbols: key -> symbol. */
  promotedStatics: Record<string, string>;
  /** Configured update points that were placed. */
  updatePoints: string[];
  /**
   * Calls left direct to the callee's implementation (`[caller key, callee key]`), so the
   * compiler may inline them; a patch that changes the callee replaces these callers too.
   */
  inlinable?: [string, string][];
  /**
   * Calls from callers that may be active at a quiescent point to quiet callees of the unit
   * (`[caller key, callee key]`), made through a guard: the implementation is called (and may be
   * inlined) while the callee's slot still holds it, the slot otherwise. A patch that replaces the
   * callee swaps its slot, so these callers need no replacement (information only).
   */
  guarded?: [string, string][];
  /**
   * Stack-frame mapping: the functions given capture and resume code (their sites and locals),
   * those that could be on a stack at an update point but got none (with why), and the calls
   * marked as no-resume regions.
   */
  frames?: Omit<FramePlan, 'edits'>;
}

export interface UnitPlanOptions {
  /** Give capture and resume code to the functions that can be on a stack at an update point (default true). */
  frames?: boolean;
}

/** Attributes that must not be duplicated on the stub and the implementation. */
const UNSAFE_ATTRIBUTES =
  /\b(__)?(constructor|destructor|section|alias|ifunc|naked|always_inline|gnu_inline|target_clones)(__)?\b/;

export const slotName = (mangled: string) => `__dsu_slot_${mangled}`;
export const implName = (mangled: string) => `__dsu_impl_${mangled}`;
export const addressName = (mangled: string) => `__dsu_addr_${mangled}`;
export const guardName = (mangled: string) => `__dsu_g_${mangled}`;
export const staticSymbol = (unitId: string, parts: string[]) => `__dsu_s_${unitId}__${parts.join('__')}`;

/** C-identifier form of a function key, stable across versions of the same unit path. */
export function mangleKey(key: string, unitId: string): string {
  const name = key.split('::').pop() as string;
  return key.includes('::') ? `${unitId}__${name}` : name;
}

export const cString = (s: string) => JSON.stringify(s);

/**
 * Around each implementation (`__dsu_impl_*`): it is exported without a prototype, and frame
 * code puts statements before declarations, so -Wmissing-prototypes and
 * -Wdeclaration-after-statement (tinyproxy builds with both) would warn on every function about
 * code the program does not have (the price: the program's own declaration-after-statement
 * warnings are not repeated by dsu build; the native build still shows them).
 */
export const IMPL_DIAGNOSTICS = {
  push:
    '_Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \\"-Wmissing-prototypes\\"")' +
    ' _Pragma("GCC diagnostic ignored \\"-Wdeclaration-after-statement\\"")' +
    // the no-resume marks are statement expressions with __auto_type (warned under -pedantic)
    ' _Pragma("GCC diagnostic ignored \\"-Wgnu-statement-expression\\"") _Pragma("GCC diagnostic ignored \\"-Wgnu-auto-type\\"") ',
  pop: ' _Pragma("GCC diagnostic pop")',
};

/** A call through a slot, with the callee's own type (`name` is a declared function). */
export const slotCall = (name: string, slot: string) =>
  `((__typeof__(&${name}))__atomic_load_n(&${slot}, __ATOMIC_RELAXED))`;

/** Declarations every rewritten unit starts with (runtime entry points under private names). */
export const PRELUDE = [
  'struct __dsu_fn_entry_v1 { unsigned int abi; const char *key; void **slot; void *impl; const char *unit; };',
  'struct __dsu_point_site_v1 { const char *name; int seen; void *next; };',
  'extern int __dsu_cc_pending __asm__("dsu__pending");',
  'extern void __dsu_cc_point_register(struct __dsu_point_site_v1 *) __asm__("dsu__point_register");',
  'extern void __dsu_cc_update_point(const char *) __asm__("dsu__update_point");',
];

/**
 * Plans the byte-offset rewrite of one preprocessed unit (DESIGN.md §4, libs/runtime/ABI.md):
 * every program function gets a slot, its body moves to `__dsu_impl_<m>`, the original symbol
 * becomes a naked stub that jumps through the slot, direct calls inside the unit go through the
 * slot, blocking calls go to the runtime's wrappers, statics get unique exported names, and
 * configured update points are inserted. All inserted text stays on existing lines so debug
 * line information is unchanged.
 */
export function planUnit(
  a: UnitAnalysis,
  updatePoints: readonly ConfiguredUpdatePoint[] = [],
  options: UnitPlanOptions = {},
): UnitPlan {
  const buf = a.preprocessed;
  const uid = a.unit.id;
  const edits: Edit[] = [];
  const functions: PlannedFunction[] = [];
  const skipped: UnitPlan['skipped'] = [];
  const byKey = new Map<string, PlannedFunction>();
  const fnByKey = new Map(a.functions.map((f) => [f.model.key, f]));
  const prelude: string[] = [...PRELUDE];
  const quiet = quiescenceFreeFunctions(a, updatePoints);
  // Statics are planned first: frame code copies initializers, which must use their new names.
  const staticEdits: Edit[] = [];
  const renames: Edit[] = [];
  const promotedStatics = promoteStatics(a, staticEdits, fnByKey, renames);
  const live = liveFunctions(a);
  const frames =
    options.frames === false
      ? undefined
      : unitFrames(a, updatePoints, {
          selected: (k) => live.has(k),
          implOf: implName,
          registration: 'section',
          quiet,
          textOf: (start, end) => textWithEdits(buf, start, end, renames),
        });
  const resumable = new Set(frames?.functions.map((f) => f.key));

  for (const f of a.functions) {
    const unsafe = live.has(f.model.key)
      ? unsafeHeader(buf, f)
      : 'a static function nothing in this unit uses (left for the compiler to drop, as it would natively)';
    if (unsafe) {
      skipped.push({ key: f.model.key, reason: unsafe });
      continue;
    }
    const mangled = mangleKey(f.model.key, uid);
    const p: PlannedFunction = {
      key: f.model.key,
      mangled,
      slot: slotName(mangled),
      impl: implName(mangled),
    };
    functions.push(p);
    byKey.set(p.key, p);
    prelude.push(`extern void *${p.slot};`);
    const runMain = f.model.name === 'main' && !f.model.isStatic && resumable.has(f.model.key);
    edits.push(...functionEdits(buf, f, p, a.unit.path, runMain));
  }

  // Direct calls of this unit's functions go through their slots; other uses keep the stub.
  // Callers that can never be on a stack while the program is quiescent call the callee's
  // implementation directly instead, where it is already defined (the compiler may inline it).
  const inlinable = new Map<string, [string, string]>();
  // Other callers of a quiet callee defined earlier in the unit call it through a guard (see
  // guardDefinition): no thread can be quiescent inside the callee's code, so a copy inlined into
  // an active caller is never resumed after the slot changed.
  const guarded = new Map<string, [string, string]>();
  const guards = new Map<string, { at: number; text: string } | null>();
  const guardOf = (f: UnitFunction, p: PlannedFunction) => {
    if (!guards.has(p.key)) {
      const text = guardDefinition(buf, f, p);
      guards.set(p.key, text === undefined ? null : { at: f.definition.end, text });
    }
    return guards.get(p.key) ? guardName(p.mangled) : undefined;
  };
  for (const c of a.callSites) {
    const target = c.direct && c.calleeKey ? byKey.get(c.calleeKey) : undefined;
    if (!target) continue;
    const callee = fnByKey.get(target.key);
    const caller = fnByKey.get(c.function);
    if (quiet.has(c.function) && callee && caller && callee.definition.start < caller.definition.start) {
      edits.push({ start: c.callee.start, end: c.callee.end, text: target.impl });
      inlinable.set(`${c.function}\0${target.key}`, [c.function, target.key]);
      continue;
    }
    const guard =
      quiet.has(target.key) && callee && caller && callee.definition.end <= caller.definition.start
        ? guardOf(callee, target)
        : undefined;
    if (guard) {
      edits.push({ start: c.callee.start, end: c.callee.end, text: guard });
      guarded.set(`${c.function}\0${target.key}`, [c.function, target.key]);
      continue;
    }
    const name = buf.toString('latin1', c.callee.start, c.callee.end);
    edits.push({ start: c.callee.start, end: c.callee.end, text: slotCall(name, target.slot) });
  }

  for (const g of guards.values()) if (g) edits.push({ start: g.at, end: g.at, text: g.text });

  edits.push(...wrapBlockingCalls(a, () => true));
  edits.push(...staticEdits);
  const late: Edit[] = [];
  const placed = placeUpdatePoints(a, updatePoints, edits, () => true, late);
  // After the inserted points: a point's capture follows its call at the same offset.
  if (frames?.edits.length) {
    edits.push(...frames.edits);
    prelude.push(...FRAME_PRELUDE);
  }
  edits.push(...late);

  edits.push({ start: 0, end: 0, text: prelude.join(' ') + '\n' });
  return {
    edits,
    functions,
    skipped,
    promotedStatics,
    updatePoints: placed,
    inlinable: [...inlinable.values()],
    guarded: [...guarded.values()],
    ...(frames ? { frames: { functions: frames.functions, refused: frames.refused, noResume: frames.noResume } } : {}),
  };
}

/**
 * The capture and resume code of a unit, chosen the same way for a program build and for a
 * patch (the frame map made from two builds' facts must fit the patch's code): functions with a
 * slot that can be on a stack at an update point (not quiescence-free), among `selected`; calls
 * of quiescence-free functions are no sites. `implOf` names an implementation by its mangled key.
 */
export function unitFrames(
  a: UnitAnalysis,
  updatePoints: readonly ConfiguredUpdatePoint[],
  o: Pick<FrameCodeOptions, 'registration' | 'initializer' | 'textOf'> & {
    selected: (fnKey: string) => boolean;
    implOf: (mangled: string) => string;
    /** quiescenceFreeFunctions(a, updatePoints), when the caller has it already. */
    quiet?: ReadonlySet<string>;
  },
): FramePlan {
  const quiet = o.quiet ?? quiescenceFreeFunctions(a, updatePoints);
  const mangled = (f: UnitFunction) => mangleKey(f.model.key, a.unit.id);
  // A noreturn function cannot return when its frame is unwound: it gets no frame code (a thread
  // stopped below it waits, as in a function without capture code).
  const text = (start: number, end: number) => a.preprocessed.toString('latin1', start, end);
  const noreturn = new Set([
    ...a.declarations.filter((d) => !d.isDefinition && NORETURN.test(text(d.range.start, d.range.end))).map((d) => d.key),
    ...a.functions.filter((f) => NORETURN.test(text(f.definition.start, f.body.start))).map((f) => f.model.key),
  ]);
  return planFrames(a, {
    selected: (f) =>
      o.selected(f.model.key) && !quiet.has(f.model.key) && !noreturn.has(f.model.key) && !unsafeHeader(a.preprocessed, f),
    quietCallees: new Set(a.functions.filter((f) => quiet.has(f.model.key)).map((f) => f.model.name)),
    implOf: (f) => o.implOf(mangled(f)),
    mangledOf: mangled,
    points: configuredPoints(a, updatePoints, o.selected),
    registration: o.registration,
    initializer: o.initializer,
    textOf: o.textOf,
  });
}

const NORETURN = /\b(_Noreturn|noreturn|__noreturn__)\b/;

/** Why a function cannot get a slot (its header), or undefined. */
function unsafeHeader(buf: Buffer, f: UnitFunction): string | undefined {
  const header = buf.toString('latin1', f.definition.start, f.body.start);
  const unsafe = UNSAFE_ATTRIBUTES.exec(header);
  if (unsafe) return `has the '${unsafe[2]}' attribute`;
  if (/\binline\b/.test(header) && !/\bstatic\b/.test(header)) return 'is a non-static inline function (C99 inline semantics)';
  return undefined;
}

/**
 * A static always-inline function with the callee's parameters that calls the implementation
 * directly (so the compiler may inline it into the caller) while the callee's slot still holds
 * it, and through the slot otherwise: one load and compare instead of an indirect call.
 * Undefined when the header cannot be reused safely (varargs, K&R parameters, attributes, asm
 * labels, unnamed parameters). Inserted after the implementation, on its last line.
 */
export function guardDefinition(buf: Buffer, f: UnitFunction, p: PlannedFunction): string | undefined {
  const m = f.model;
  if (m.variadic || !m.params || m.params.some((x) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(x))) return undefined;
  const before = buf.toString('latin1', f.definition.start, f.name.start);
  const after = buf.toString('latin1', f.name.end, f.body.start);
  if (/__attribute__|__declspec|\[\[|\basm\b|__asm|;|"|'|#/.test(before + after)) return undefined;
  if (!after.trimStart().startsWith('(')) return undefined;
  const type = before.replace(/\b(static|extern|inline|__inline__|__inline|_Noreturn|_Thread_local)\b/g, ' ');
  const args = m.params.join(', ');
  const direct = `${p.impl}(${args})`;
  const viaSlot = `((__typeof__(&${p.impl}))__dsu_f)(${args})`;
  const body = /^void\s*\(/.test(m.signature)
    ? `{ ${direct}; return; } ${viaSlot};`
    : `return ${direct}; return ${viaSlot};`;
  return (
    ` static __inline__ __attribute__((always_inline, unused)) ${type} ${guardName(p.mangled)}${after}` +
    ` { void *__dsu_f = __atomic_load_n(&${p.slot}, __ATOMIC_RELAXED);` +
    ` if (__builtin_expect(__dsu_f == (void *)&${p.impl}, 1)) ${body} }`
  ).replace(/\s+/g, ' ');
}

/**
 * Functions of the unit that can never be on a thread's stack while the program is quiescent
 * (every thread at an update point or inside a wrapped blocking call), so code inlined into them
 * can be replaced by replacing them: no update point (in the source or configured), no blocking
 * call, no call through a pointer, no function address handed out (a callback could block), and
 * every callee either such a function of this unit or a library function (declared only in system
 * headers). A call to a program function of another unit could block: unknown, so not quiet.
 */
export function quiescenceFreeFunctions(
  a: UnitAnalysis,
  configured: readonly ConfiguredUpdatePoint[] = [],
): Set<string> {
  const unitFns = new Map(a.functions.map((f) => [f.model.key, f]));
  const programNames = new Set([
    ...a.declarations.map((d) => d.name),
    ...a.functions.map((f) => f.model.name),
  ]);
  const configuredAt = new Set(configured.map((p) => p.function));
  const noisy = new Set<string>();
  for (const c of a.blockingCalls) noisy.add(c.function);
  for (const m of a.markers) if (m.kind === 'update-point') noisy.add(m.function);
  for (const t of a.threadCreates) noisy.add(t.function);
  for (const r of a.references) if (r.use === 'address' && r.function) noisy.add(r.function);
  const quiet = new Set<string>();
  for (const f of a.functions) {
    const m = f.model;
    if (
      noisy.has(m.key) ||
      configuredAt.has(m.name) ||
      m.updatePoints.length > 0 ||
      m.indirectCalls.length > 0
    )
      continue;
    quiet.add(m.key);
  }
  for (const c of a.callSites) {
    if (!quiet.has(c.function)) continue;
    const local = c.calleeKey !== undefined && unitFns.has(c.calleeKey);
    const library = !local && c.direct && c.calleeName !== undefined && !programNames.has(c.calleeName);
    if (!c.direct || (!local && !library)) quiet.delete(c.function);
  }
  // A caller is quiet only if every function of this unit it calls is.
  for (let changed = true; changed;) {
    changed = false;
    for (const c of a.callSites) {
      if (quiet.has(c.function) && c.calleeKey && unitFns.has(c.calleeKey) && !quiet.has(c.calleeKey)) {
        quiet.delete(c.function);
        changed = true;
      }
    }
  }
  return quiet;
}

/**
 * Blocking calls (of functions the program does not define itself) in the selected functions
 * go to the runtime's wrappers, declared with the libc function's own type.
 */
export function wrapBlockingCalls(a: UnitAnalysis, selected: (fnKey: string) => boolean): Edit[] {
  const edits: Edit[] = [];
  const defined = new Set(a.functions.map((f) => f.model.name));
  const perFunction = new Map<string, Set<string>>();
  for (const c of a.blockingCalls) {
    if (defined.has(c.name) || !selected(c.function)) continue;
    edits.push({ start: c.callee.start, end: c.callee.end, text: `dsu_${c.name}` });
    perFunction.set(c.function, (perFunction.get(c.function) ?? new Set<string>()).add(c.name));
  }
  for (const [fnKey, names] of perFunction) {
    const f = a.functions.find((x) => x.model.key === fnKey);
    if (!f) continue;
    const decls = [...names].map((n) => `extern __typeof__(${n}) dsu_${n};`).join(' ');
    edits.push({ start: f.definition.start, end: f.definition.start, text: decls + ' ' });
  }
  return edits;
}

/**
 * A function under its original name (linkage, type and attributes of `header`, the definition's
 * text up to its body) whose body jumps through `slot`: naked, so it forwards any arguments
 * (varargs included) untouched with one indirect jump and adds no frame.
 */
export function stubDefinition(header: string, slot: string): string {
  return (
    '_Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \\"-Wunused-parameter\\"") ' +
    `__attribute__((naked, noinline, unused)) ${header.replace(/\s+/g, ' ').trim()} ` +
    `{ __asm__("jmp *${slot}(%rip)"); } _Pragma("GCC diagnostic pop") `
  );
}

function functionEdits(buf: Buffer, f: UnitFunction, p: PlannedFunction, unitPath: string, runMain: boolean): Edit[] {
  const header = buf.toString('latin1', f.definition.start, f.body.start);
  // A resumable main is entered through the runtime, which enters it again after an unwind.
  const stub = runMain
    ? `int main(int __dsu_argc, char **__dsu_argv, char **__dsu_envp) { return __dsu_cc_run_main(&${p.slot}, __dsu_argc, __dsu_argv, __dsu_envp); } `
    : stubDefinition(header, p.slot);
  const name = buf.toString('latin1', f.name.start, f.name.end);
  // A static stub has no exported name; patches that take its address use this pointer.
  const address = f.model.isStatic ? ` void *const ${addressName(p.mangled)} = (void *)&${name};` : '';
  const entry =
    ` void *${p.slot} = (void *)&${p.impl};` +
    address +
    ` static const struct __dsu_fn_entry_v1 __dsu_fe_${p.mangled} __attribute__((used, section("dsu_fn"), aligned(8))) =` +
    ` { 1u, ${cString(p.key)}, &${p.slot}, (void *)&${p.impl}, ${cString(unitPath)} };`;
  return [
    { start: f.definition.start, end: f.definition.start, text: stub + IMPL_DIAGNOSTICS.push },
    { start: f.name.start, end: f.name.end, text: p.impl },
    { start: f.definition.end, end: f.definition.end, text: IMPL_DIAGNOSTICS.pop + entry },
  ];
}

/**
 * Gives every static a unique exported name so patches can link to it. File statics lose
 * `static` (external linkage also stops the optimizer from assuming only this unit writes
 * them); function-local statics are declared `extern` in place and defined at file scope.
 */
function promoteStatics(
  a: UnitAnalysis,
  edits: Edit[],
  fnByKey: Map<string, UnitFunction>,
  renames: Edit[],
): Record<string, string> {
  const buf = a.preprocessed;
  const out: Record<string, string> = {};
  const withKeyword = a.variables
    .filter((v) => v.storage === 'static')
    .map((s) => ({ s, kw: findToken(buf, { start: s.definition.start, end: s.nameRange.start }, 'static') }));
  const sharing = new Map<number, number>();
  for (const { kw } of withKeyword) if (kw) sharing.set(kw.start, (sharing.get(kw.start) ?? 0) + 1);
  const keywordDone = new Set<number>();
  // tags defined at file scope (and those hoisted there from functions, below)
  const tagsAtFileScope = new Set(a.types.map((t) => t.key));
  let n = 0;
  for (const { s, kw } of withKeyword) {
    if (!kw) continue;
    const symbol = staticSymbol(a.unit.id, s.key.split('::').slice(1));
    const declEnd = declaratorEnd(buf, s.nameRange, s.definition.end);
    const label = ` __asm__(${cString(symbol)})`;
    if (!s.function) {
      if (!keywordDone.has(kw.start)) edits.push({ start: kw.start, end: kw.end, text: '' });
      keywordDone.add(kw.start);
      edits.push({ start: declEnd, end: declEnd, text: label });
    } else {
      const f = fnByKey.get(s.function);
      const declText = buf.toString('latin1', s.definition.start, s.definition.end);
      const rel = (x: number) => x - s.definition.start;
      if (!f) continue;
      const shared = (sharing.get(kw.start) ?? 0) > 1;
      // `static struct fileread { ... } *filesread;` (dnsmasq): the struct moves to file scope with
      // the definition; left in place (not patchable by name) when that could clash (see hoistable).
      const definesType = declText.slice(0, rel(s.nameRange.start)).includes('{');
      if (definesType && (shared || !hoistable(declText.slice(0, rel(s.nameRange.start)), tagsAtFileScope))) continue;
      if (shared && (!s.type || /\((unnamed|anonymous)/.test(s.type))) continue; // its type has no spelling
      // `static const union proto_un v` where the function itself defines `union proto_un` (lighttpd):
      // the type does not exist at file scope, so the static stays where it is.
      const specifiers = shared ? (s.type ?? '') : declText.slice(0, rel(s.nameRange.start));
      if (usesLocalType(specifiers, buf.toString('latin1', f.body.start, f.body.end), tagsAtFileScope)) continue;
      // Declared and used under a name of its own in the unit (see local-statics.ts).
      const name = localStaticName(n++);
      const tail = name + declText.slice(rel(s.nameRange.end), rel(declEnd)) + label + declText.slice(rel(declEnd));
      // `static struct opt *o, *ret;`: the specifiers are shared, so each takes its own type.
      const def = shared
        ? `__typeof__(${s.type}) ${name}${label}${declText.slice(rel(declEnd))}`
        : declText.slice(0, rel(kw.start)) + declText.slice(rel(kw.end), rel(s.nameRange.start)) + tail;
      edits.push({ start: f.definition.start, end: f.definition.start, text: oneLine(def) + '; ' });
      if (definesType) {
        // The type is now the file-scope one: the block refers to the definition through it.
        edits.push({ start: s.definition.start, end: s.definition.end, text: `extern __typeof__(${name}) ${name}${label}` });
        const refs = renameLocalStatic(a, s, name).slice(1);
        edits.push(...refs);
        renames.push(...refs);
        out[s.key] = symbol;
        continue;
      }
      if (!keywordDone.has(kw.start)) edits.push({ start: kw.start, end: kw.end, text: 'extern' });
      keywordDone.add(kw.start);
      const renamed = renameLocalStatic(a, s, name);
      edits.push(...renamed);
      renames.push(...renamed);
      edits.push({ start: declEnd, end: s.definition.end, text: label });
    }
    out[s.key] = symbol;
  }
  return out;
}

/**
 * Whether type specifiers name a tag or typedef that `body` (a function's) defines for itself
 * (tags hoisted to file scope with a static, `atFileScope`, are not its own any more).
 */
function usesLocalType(specifiers: string, body: string, atFileScope: ReadonlySet<string>): boolean {
  for (const m of specifiers.matchAll(/\b(struct|union|enum)\s+([A-Za-z_]\w*)/g))
    if (!atFileScope.has(`${m[1]} ${m[2]}`) && new RegExp(`\\b${m[1]}\\s+${m[2]}\\s*\\{`).test(body) && !new RegExp(`\\b${m[1]}\\s+${m[2]}\\s*\\{`).test(specifiers)) return true;
  if (!body.includes('typedef')) return false;
  for (const m of specifiers.matchAll(/\b[A-Za-z_]\w*\b/g))
    if (new RegExp(`\\btypedef\\b[^;{}]*(?:\\{[^]*?\\}[^;]*)?\\b${m[0]}\\s*;`).test(body)) return true;
  return false;
}

/**
 * Whether the type a local static's declaration defines (`specifiers`: the text before its name)
 * can move to file scope: struct and union definitions whose tag is not at file scope already
 * (`taken`, which gets them; an enum's constants could clash with file-scope names).
 */
function hoistable(specifiers: string, taken: Set<string>): boolean {
  if (/\benum\b/.test(specifiers)) return false;
  const tags = [...specifiers.matchAll(/\b(struct|union)\s+([A-Za-z_]\w*)\s*\{/g)].map((m) => `${m[1]} ${m[2]}`);
  if (tags.some((t) => taken.has(t))) return false;
  for (const t of tags) taken.add(t);
  return true;
}

/**
 * The unit's functions that can run: its external ones and the statics they (or global
 * initializers) reach. A header's static inline function no code of the unit uses is not emitted
 * by the compiler; giving it a slot and a registration would emit it, with its references to
 * functions the program may not link (lighttpd's tests: chunkqueue_chunk_file_viewadj).
 */
export function liveFunctions(a: UnitAnalysis): Set<string> {
  const refs = new Map<string | undefined, string[]>();
  for (const r of a.references) refs.set(r.function, [...(refs.get(r.function) ?? []), r.key]);
  const live = new Set<string>();
  const pending = [...a.functions.filter((f) => !f.model.isStatic).map((f) => f.model.key), ...(refs.get(undefined) ?? [])];
  for (let k = pending.pop(); k !== undefined; k = pending.pop()) {
    if (live.has(k)) continue;
    live.add(k);
    pending.push(...(refs.get(k) ?? []));
  }
  return live;
}

/** A configured point's place; `close`: the loop body is one statement, braced from `offset` to here. */
export type PlacedPoint = InsertedPoint & { index: number; close?: number };

/**
 * Where the configured update points of the unit's (selected) functions go: the body's start, or
 * the start of the body of its main loop (the largest loop not inside another) — `while (x) f();`,
 * `for (;;) {…}` and `do {…} while (x)` alike; a body that is one statement gets braces around
 * the point and it. Throws when a loop point has no loop to go in.
 */
export function configuredPoints(
  a: UnitAnalysis,
  points: readonly ConfiguredUpdatePoint[],
  selected: (fnKey: string) => boolean = () => true,
): PlacedPoint[] {
  const out: PlacedPoint[] = [];
  points.forEach((p, index) => {
    const f = a.functions.find((fn) => fn.model.name === p.function);
    if (!f || !selected(f.model.key)) return; // defined in another unit, or not being rewritten
    const name = `${p.function}:${p.where}`;
    if (p.where === 'entry') {
      out.push({ function: f.model.key, name, offset: f.body.start + 1, index });
      return;
    }
    const loop = (f.loopBodies ?? []).reduce<NonNullable<UnitFunction['loopBodies']>[number] | undefined>(
      (best, l) => (!best || l.loopSize > best.loopSize ? l : best),
      undefined,
    );
    if (loop) {
      const at = loop.braced ? { offset: loop.start + 1 } : { offset: loop.start, close: loop.end };
      out.push({ function: f.model.key, name, index, ...at });
      return;
    }
    const scanned = outermostLoopBodyStart(a.preprocessed, f.body);
    if ('error' in scanned)
      throw new Error(
        `--update-point ${name}: function '${p.function}' ${scanned.error}; use ${p.function}:entry or DSU_UPDATE_POINT("...") in the source`,
      );
    out.push({ function: f.model.key, name, offset: scanned.offset, index });
  });
  return out;
}

/**
 * Inserts the configured update points; the closing brace of a point in a one-statement loop
 * body goes into `late`, which the caller appends after every other edit (so it closes after the
 * statement's own inserted code). Returns the names placed.
 */
export function placeUpdatePoints(
  a: UnitAnalysis,
  points: readonly ConfiguredUpdatePoint[],
  edits: Edit[],
  selected: (fnKey: string) => boolean = () => true,
  late: Edit[] = edits,
): string[] {
  const placed: string[] = [];
  for (const { name, offset, index: i, close } of configuredPoints(a, points, selected)) {
    const site = `__dsu_ps_${i}`;
    if (close !== undefined) late.push({ start: close, end: close, text: ' }' });
    edits.push({
      start: offset,
      end: offset,
      text:
        (close !== undefined ? '{' : '') +
        ` { static struct __dsu_point_site_v1 ${site} = { ${cString(name)}, 0, 0 };` +
        ` if (__builtin_expect(!__atomic_load_n(&${site}.seen, __ATOMIC_RELAXED), 0)) __dsu_cc_point_register(&${site});` +
        ` if (__builtin_expect(__atomic_load_n(&__dsu_cc_pending, __ATOMIC_RELAXED), 0)) __dsu_cc_update_point(${cString(name)}); } `,
    });
    placed.push(name);
  }
  return placed;
}
