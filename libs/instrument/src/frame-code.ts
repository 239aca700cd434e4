import type { FrameLocal, FrameSite, UnitAnalysis, UnitFunction } from '@dsu/c-frontend';
import { wrapEdits, type Edit } from './edits';
import { oneLine } from './local-statics';

/**
 * Stack-frame capture and resume code (libs/runtime/ABI.md §11, docs/DESIGN.md §7): what dsu-cc
 * and the patch generator add to a function that can be on a stack at an update point, so the
 * runtime can unwind its frame after an update and rebuild it in the new code.
 */

/** Runtime entry points under private names (added to a unit that has frame code). */
export const FRAME_PRELUDE = [
  'struct __dsu_frame_fn_v1 { unsigned int abi; unsigned int nsites; const char *key; void *impl; const char *const *sites; };',
  'extern __thread int __dsu_cc_unwinding __asm__("dsu__unwinding") __attribute__((tls_model("initial-exec")));',
  'extern __thread int __dsu_cc_resuming __asm__("dsu__resuming") __attribute__((tls_model("initial-exec")));',
  'extern __thread int __dsu_cc_nomap __asm__("dsu__nomap") __attribute__((tls_model("initial-exec")));',
  'extern void __dsu_cc_frame_capture(const char *, const char *) __asm__("dsu__frame_capture") __attribute__((cold));',
  'extern void __dsu_cc_frame_save(const char *, const void *, unsigned long, unsigned int) __asm__("dsu__frame_save") __attribute__((cold));',
  'extern int __dsu_cc_frame_resume(const char *, const char *const *, unsigned int) __asm__("dsu__frame_resume") __attribute__((cold));',
  'extern int __dsu_cc_frame_load(const char *, void *, unsigned long, unsigned int) __asm__("dsu__frame_load") __attribute__((cold));',
  'extern void __dsu_cc_frame_done(void) __asm__("dsu__frame_done") __attribute__((cold));',
  'extern int __dsu_cc_run_main(void **, int, char **, char **) __asm__("dsu__run_main");',
];

const KIND_CODE: Record<FrameLocal['kind'], number> = { bytes: 0, ptr: 1, int: 2, uint: 3 };

/** A local as a frame record holds it (the frame map matches old and new by these). */
export interface FrameLocalFact {
  name: string;
  type: string;
  kind: FrameLocal['kind'];
  /** simple: a side-effect-free initializer the resume code can run again. */
  initializer?: 'simple' | 'complex';
  /** A parameter: the resumed call passes it again. */
  param?: boolean;
  /** The line where its address is stored somewhere that may outlive the frame (a rebuilt frame moves it). */
  escapesAt?: number;
}

/** A function given capture and resume code. */
export interface FrameFunction {
  key: string;
  /** The registration record (`struct dsu_frame_fn`). */
  entry: string;
  /** Site names in resume-index order, as registered. */
  sites: string[];
  /** Every local a capture can save, in declaration order. */
  locals: FrameLocalFact[];
}

export interface FramePlan {
  edits: Edit[];
  functions: FrameFunction[];
  /** Functions that could be on a stack at an update point but got no frame code, with why. */
  refused: { key: string; reason: string }[];
  /** Calls wrapped as no-resume regions: a thread stopped under one is not unwound (the update waits). */
  noResume: { key: string; line: number; reason: string }[];
}

/** An update point dsu-cc inserts itself (`--update-point F:loop`), at an offset of the unit. */
export interface InsertedPoint {
  function: string;
  name: string;
  offset: number;
}

export interface FrameCodeOptions {
  /** Functions that get frame code (the program: those that can be on a stack at a point). */
  selected: (f: UnitFunction) => boolean;
  /** Names of program functions that can never reach an update point: their calls are not sites. */
  quietCallees: ReadonlySet<string>;
  /** The function's implementation name as the rewritten unit defines it. */
  implOf: (f: UnitFunction) => string;
  /** A C-identifier form of the function's key, for generated names. */
  mangledOf: (f: UnitFunction) => string;
  points: readonly InsertedPoint[];
  /** 'section': a static record in section dsu_frame (the program); else an exported record named with this suffix (a patch). */
  registration: 'section' | { suffix: string };
  /** The value of a local the old frame lacks (a patch's frame map); default: a side-effect-free initializer. */
  initializer?: (fnKey: string, local: FrameLocal) => string | undefined;
  /** The unit's text of a range as the rewritten unit has it (renamed statics); default: as it is. */
  textOf?: (start: number, end: number) => string;
}

/** A place a frame stops at, resolved to what the generated code needs. */
interface Stop {
  site: FrameSite | undefined;
  id: string;
  kind: FrameSite['kind'];
  /** Where the capture (and an "after" restore) goes. */
  after: number;
  /** Where a "before" restore goes (call sites and re-issued waits). */
  before: number;
  locals: FrameLocal[];
  braceless: boolean;
  /** A `decl` statement's own local: not yet declared before the statement. */
  declared?: string;
}

/**
 * Plans the capture and resume code of a unit's selected functions. Each resumable site gets a
 * capture after it (`if (dsu__unwinding) { record; save locals; return; }`) and a restore block
 * (`if (0) { rK: load locals; dsu__frame_done(); }`) where it resumes: before a call (made again,
 * so the callee rebuilds its own frame) or a re-issued wait, after an update point or a completed
 * wait. The function's `{` gets the resume switch. A call on the way to an update point that
 * cannot be resumed (nested in an expression) is wrapped as a no-resume region instead; a function
 * with a point or void call that cannot be handled either way gets no frame code (refused).
 */
export function planFrames(a: UnitAnalysis, opts: FrameCodeOptions): FramePlan {
  const plan: FramePlan = { edits: [], functions: [], refused: [], noResume: [] };
  for (const f of a.functions) {
    if (!f.frame || !opts.selected(f)) continue;
    const one = planFunction(a.preprocessed, f, opts);
    if ('none' in one) continue; // no site: never on a stack at an update point
    if ('reason' in one) {
      plan.refused.push({ key: f.model.key, reason: one.reason });
      continue;
    }
    plan.edits.push(...one.edits);
    plan.functions.push(one.fn);
    plan.noResume.push(...one.noResume);
  }
  return plan;
}

function planFunction(
  buf: Buffer,
  f: UnitFunction,
  opts: FrameCodeOptions,
): { edits: Edit[]; fn: FrameFunction; noResume: FramePlan['noResume'] } | { reason: string } | { none: true } {
  const info = f.frame!;
  const found = collectStops(f, opts);
  if ('reason' in found) return found;
  const { stops, edits, noResume } = found;
  // Every place it could stop at is a no-resume region: say so (the checker quotes it).
  if (stops.length === 0 && noResume.length) return { reason: noResume.map((n) => n.reason).join('; ') };
  if (stops.length === 0) return { none: true };
  const register = info.locals.find(
    (l) => !l.static && /\bregister\b/.test(buf.toString('latin1', l.decl.start, l.decl.end)),
  );
  if (register) return { reason: `the local '${register.name}' is declared register (its address cannot be taken to save it)` };

  const names: string[] = [];
  const cases: string[] = [];
  const label = (id: string) => {
    const k = names.length;
    names.push(id);
    cases.push(`case ${k}: goto __dsu_r${k};`);
    return `__dsu_r${k}`;
  };
  const ret = returnZero(f, opts.implOf(f));
  for (const st of stops) edits.push(...stopEdits(buf, f.model.key, st, label, ret, opts));
  edits.push(...registrationEdits(f, names, cases, opts));
  const entry = recordName(f, opts);
  return { edits, fn: { key: f.model.key, entry, sites: names, locals: localFacts(info.locals) }, noResume };
}

/**
 * The places a function's frame can stop at (its resumable sites and the update points dsu-cc
 * inserts), in source order, and the no-resume marks of the sites that cannot be resumed; or why
 * the function cannot have frame code (a point that cannot be resumed).
 */
function collectStops(
  f: UnitFunction,
  opts: FrameCodeOptions,
): { stops: Stop[]; edits: Edit[]; noResume: FramePlan['noResume'] } | { reason: string } {
  const info = f.frame!;
  const key = f.model.key;
  const stops: Stop[] = [];
  const edits: Edit[] = [];
  const noResume: FramePlan['noResume'] = [];
  for (const s of info.sites.filter((x) => x.kind !== 'call' || !opts.quietCallees.has(x.callee))) {
    const locals = visibleLocals(info.locals, s.locals, s.statement.start);
    if (!s.resumable || 'shadowed' in locals) {
      const reason =
        s.reason ??
        `the local '${(locals as { shadowed: string }).shadowed}' in scope at line ${s.line} hides another local of the same name`;
      if (s.kind === 'point') return { reason };
      const marks = noResumeMarks(s);
      if (!marks) return { reason: `${reason} (a call without a value cannot be marked)` };
      noResume.push({ key, line: s.line, reason });
      edits.push(...marks);
      continue;
    }
    stops.push({
      site: s,
      id: s.id,
      kind: s.kind,
      after: s.statement.end,
      before: s.statement.start,
      locals: locals.list,
      braceless: s.inBracelessBody,
      ...(s.form === 'decl' ? { declared: locals.list.find((l) => l.decl.start === s.statement.start)?.name } : {}),
    });
  }
  for (const p of opts.points.filter((x) => x.function === key)) {
    const inScope = info.locals.filter(
      (l) => !l.static && l.decl.end <= p.offset && l.scope.start <= p.offset && p.offset < l.scope.end,
    );
    const locals = visibleLocals(info.locals, inScope.map((l) => l.name), p.offset);
    if ('shadowed' in locals) return { reason: `the local '${locals.shadowed}' at update point ${p.name} hides another local of the same name` };
    if (inScope.some((l) => l.vla)) return { reason: `a variable-length array is in scope at update point ${p.name}` };
    stops.push({ site: undefined, id: `point:${p.name}`, kind: 'point', after: p.offset, before: p.offset, locals: locals.list, braceless: false });
  }
  // Source order; an inserted point before a statement starting at the same offset.
  stops.sort((x, y) => x.before - y.before || (x.site ? 1 : 0) - (y.site ? 1 : 0));
  return { stops, edits, noResume };
}

/**
 * The code of one stop: the capture after it and its restore block(s) — before a call (made
 * again) and a re-issued wait, after a point and a completed wait — labelled through `label`.
 */
function stopEdits(
  buf: Buffer,
  key: string,
  st: Stop,
  label: (id: string) => string,
  ret: string,
  opts: FrameCodeOptions,
): Edit[] {
  const restore = (locals: FrameLocal[]) =>
    locals.map((l) => loadLocal(buf, key, l, opts)).join(' ') + ' __dsu_cc_frame_done();';
  const siteName =
    st.kind === 'wait' ? `__dsu_cc_unwinding == 2 ? "${st.id}:again" : "${st.id}"` : `"${st.id}"`;
  let after =
    ` if (__builtin_expect(__dsu_cc_unwinding, 0)) { __dsu_cc_frame_capture("${key}", ${siteName});` +
    ` ${st.locals.map(saveLocal).join(' ')} ${ret} }`;
  const beforeLocals = st.locals.filter((l) => l.name !== st.declared);
  let before = '';
  if (st.kind === 'call') {
    before = `if (0) { ${label(st.id)}: ${restore(beforeLocals)} } `;
  } else if (st.kind === 'wait') {
    after += ` if (0) { ${label(st.id)}: ${restore(st.locals)} }`;
    before = `if (0) { ${label(`${st.id}:again`)}: ${restore(beforeLocals)} } `;
  } else {
    after += ` if (0) { ${label(st.id)}: ${restore(st.locals)} }`;
  }
  if (st.braceless) {
    before = '{ ' + before;
    after += ' }';
  }
  return [
    ...(st.site ? [{ start: st.before, end: st.before, text: before }] : []),
    { start: st.after, end: st.after, text: after + ' ' },
  ];
}

const recordName = (f: UnitFunction, opts: FrameCodeOptions) =>
  opts.registration === 'section'
    ? `__dsu_ff_${opts.mangledOf(f)}`
    : `__dsu_ff_${opts.mangledOf(f)}__${opts.registration.suffix}`;

/** The site names array before the function, the resume switch at its `{`, its record after it. */
function registrationEdits(f: UnitFunction, names: string[], cases: string[], opts: FrameCodeOptions): Edit[] {
  const key = f.model.key;
  const m = opts.mangledOf(f);
  const sitesArray = opts.registration === 'section' ? `__dsu_fs_${m}` : `__dsu_fs_${m}__${opts.registration.suffix}`;
  const record = `{ 1u, ${names.length}u, "${key}", (void *)&${opts.implOf(f)}, ${sitesArray} };`;
  return [
    {
      start: f.definition.start,
      end: f.definition.start,
      text: `static const char *const ${sitesArray}[] = { ${names.map((n) => JSON.stringify(n)).join(', ')} }; `,
    },
    {
      start: f.body.start,
      end: f.body.start + 1,
      text:
        `{ if (__builtin_expect(__dsu_cc_resuming, 0)) switch (__dsu_cc_frame_resume("${key}", ${sitesArray}, ${names.length}u)) {` +
        ` ${cases.join(' ')} default: break; }`,
    },
    {
      start: f.definition.end,
      end: f.definition.end,
      text:
        opts.registration === 'section'
          ? ` static const struct __dsu_frame_fn_v1 ${recordName(f, opts)} __attribute__((used, section("dsu_frame"), aligned(8))) = ${record}`
          : ` const struct __dsu_frame_fn_v1 ${recordName(f, opts)} __attribute__((visibility("default"))) = ${record}`,
    },
  ];
}

/** The locals as the build records them for frame maps (libs/frame-map FrameFacts). */
function localFacts(all: FrameLocal[]): FrameLocalFact[] {
  return all
    .filter((l) => !l.static)
    .map((l) => {
      const escapesAt = l.addressUses.find((u) => u.use === 'escapes')?.line;
      return {
        name: l.name,
        type: l.type,
        kind: l.kind,
        ...(l.param ? { param: true } : {}),
        ...(escapesAt !== undefined ? { escapesAt } : {}),
        ...(l.initializer ? { initializer: l.initializer.simple ? ('simple' as const) : ('complex' as const) } : {}),
      };
    });
}

/**
 * The locals the names denote at offset `at` (a statement's start; a local declared by that very
 * statement counts), or the first name hidden by another local in scope there. Locals of the same
 * name in other blocks of the function are not in scope at `at`.
 */
function visibleLocals(
  all: FrameLocal[],
  names: string[],
  at: number,
): { list: FrameLocal[] } | { shadowed: string } {
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) return { shadowed: n };
    seen.add(n);
  }
  const inScope = (l: FrameLocal) =>
    l.decl.start === at || (l.decl.end <= at && l.scope.start <= at && at <= l.scope.end);
  const list = names.map((n) => {
    const candidates = all.filter((l) => l.name === n && !l.static && inScope(l));
    return candidates[candidates.length - 1];
  });
  return { list: list.filter((l): l is FrameLocal => !!l) };
}

/**
 * Marks a call that cannot be resumed as a no-resume region (dsu__nomap raised around it): a call
 * that is its own statement around the statement, one inside an expression through a statement
 * expression yielding its value; undefined for a `void` call inside an expression.
 */
function noResumeMarks(s: FrameSite): Edit[] | undefined {
  if (s.form === 'expr') return wrapEdits(s.statement, '{ __dsu_cc_nomap++; ', ' __dsu_cc_nomap--; }');
  if (s.returnsVoid) return undefined;
  return wrapEdits(s.call, '({ __dsu_cc_nomap++; __auto_type __dsu_v = ', '; __dsu_cc_nomap--; __dsu_v; })');
}

/**
 * Whether a local is saved and restored through a copy rather than through its address: taking
 * its address in the capture code would keep it in memory on the hot path (the compiler could no
 * longer keep a loop counter in a register). Locals whose address the program takes anyway (the
 * runtime relocates pointers to them by their storage), arrays (not assignable), top-level const
 * locals (not assignable) and volatile ones (in memory anyway) go through their address.
 */
function byValue(l: FrameLocal): boolean {
  const t = l.type.replace(/\s+/g, ' ').trim();
  // const after the last `*` of the declarator, restrict beside it or not (`char *const restrict
  // out`), inside the group of a function or array pointer (`int (*const)(struct connection *)`)
  const decl = /\((\*[^()]*)\)/.exec(t)?.[1] ?? t;
  const star = decl.lastIndexOf('*');
  const topConst = /\bconst\b/.test(star < 0 ? decl : decl.slice(star + 1));
  return !l.addressTaken && !t.endsWith(']') && !topConst && !/\bvolatile\b/.test(t);
}

/** Saves one local into the frame record being captured. */
function saveLocal(l: FrameLocal): string {
  const k = `${KIND_CODE[l.kind]}u`;
  // through an integer: `&out` of a `char *const restrict out` would discard restrict (a warning)
  if (!byValue(l)) return `__dsu_cc_frame_save("${l.name}", (const void *)(__UINTPTR_TYPE__)&${l.name}, sizeof ${l.name}, ${k});`;
  return `{ __typeof__(${l.name}) __dsu_t = ${l.name}; __dsu_cc_frame_save("${l.name}", &__dsu_t, sizeof __dsu_t, ${k}); }`;
}

/** Restores one local; when the old frame has none, runs its initializer (or zeroes it). */
function loadLocal(buf: Buffer, fnKey: string, l: FrameLocal, opts: FrameCodeOptions): string {
  const k = `${KIND_CODE[l.kind]}u`;
  const given = opts.initializer?.(fnKey, l);
  const init =
    given ??
    (l.initializer?.simple
      ? (opts.textOf?.(l.initializer.start, l.initializer.end) ?? buf.toString('latin1', l.initializer.start, l.initializer.end))
      : undefined);
  // one line without touching string literals (`"a  b"` stays as the program wrote it)
  const expr = init === undefined ? undefined : oneLine(init);
  if (byValue(l)) {
    // A parameter the old frame lacks keeps the argument of the call that was made again.
    const otherwise =
      expr !== undefined
        ? ` else ${l.name} = (${expr});`
        : l.param
          ? ''
          : ` else { __builtin_memset(&__dsu_t, 0, sizeof __dsu_t); ${l.name} = __dsu_t; }`;
    return `{ __typeof__(${l.name}) __dsu_t; if (__dsu_cc_frame_load("${l.name}", &__dsu_t, sizeof __dsu_t, ${k})) ${l.name} = __dsu_t;${otherwise} }`;
  }
  // The local may be const: its address goes through an integer (no -Wcast-qual on the program's build).
  const at = `(void *)(__UINTPTR_TYPE__)&${l.name}`;
  const load = `__dsu_cc_frame_load("${l.name}", ${at}, sizeof ${l.name}, ${k})`;
  if (expr === undefined && l.param) return `${load};`;
  return expr === undefined
    ? `if (!${load}) __builtin_memset(${at}, 0, sizeof ${l.name});`
    : // through a copy: the local may be const
      `if (!${load}) { __typeof__(${l.name}) __dsu_i = (${expr}); __builtin_memcpy(${at}, (const void *)(__UINTPTR_TYPE__)&__dsu_i, sizeof ${l.name}); }`;
}

/** `return` with a zero value of the function's return type (the caller is unwinding too). */
function returnZero(f: UnitFunction, impl: string): string {
  if (/^void\s*\(/.test(f.model.signature)) return 'return;';
  const args = (f.model.params ?? []).join(', ');
  return (
    `{ __typeof__(${impl}(${args})) __dsu_z; __builtin_memset(&__dsu_z, 0, sizeof __dsu_z); return __dsu_z; }`
  );
}
