import type { UnitAnalysis } from '@dsu/c-frontend';
import {
  addressName,
  cString,
  completeArrayEdit,
  declaratorEnd,
  findToken,
  implName,
  localStaticName,
  mangleKey,
  placeUpdatePoints,
  FRAME_PRELUDE,
  IMPL_DIAGNOSTICS,
  PRELUDE,
  renameLocalStatic,
  slotCall,
  textWithEdits,
  slotName,
  staticSymbol,
  stubDefinition,
  unitFrames,
  wrapBlockingCalls,
  type ConfiguredUpdatePoint,
  type Edit,
  type FramePlan,
} from '@dsu/instrument';

export interface PatchUnitRequest {
  /** Keys whose new body this patch carries (body changes). */
  changed: ReadonlySet<string>;
  /** Keys the new version adds (the patch defines their slots). */
  added: ReadonlySet<string>;
  /** Every function key of the new version, with the unit id that mangles it. */
  programFunctions: ReadonlyMap<string, { unitId: string; isStatic: boolean }>;
  /**
   * Statics the running program exports (its units' promotedStatics): the others were left in
   * place by dsu-cc, so the patch cannot refer to them and keeps its own copy. Undefined: all.
   */
  promotedStatics?: ReadonlySet<string>;
  /** Read-only tables whose type changed (PatchContents.tables): defined by the patch anew. */
  tables?: ReadonlySet<string>;
  /** Suffix of the new implementations' names, unique per patch (e.g. `v1a2b3c4d`). */
  suffix: string;
  updatePoints: readonly ConfiguredUpdatePoint[];
  /** Variables the new version adds: the patch defines them (with their initializer). */
  addedVariables?: ReadonlySet<string>;
  /** A new local's value when the old frame has none (patch.yaml `frames:`): function key → local → C expression. */
  frameInitializers?: ReadonlyMap<string, ReadonlyMap<string, string>>;
}

export interface PatchUnitFunction {
  key: string;
  change: 'body' | 'added' | 'signature';
  symbol: string;
  /** ADDED: the slot the patch defines. */
  slot?: string;
}

export interface PatchUnit {
  edits: Edit[];
  functions: PatchUnitFunction[];
  /** Capture and resume code of the patch's functions that can be on a stack at an update point. */
  frames: Omit<FramePlan, 'edits'>;
}

/**
 * Turns one preprocessed unit of the NEW version into a patch unit: the changed and added
 * functions keep their definitions under version-suffixed names; every other function becomes
 * a declaration; variables become `extern` declarations of the running program's (promoted
 * statics by their exported names); calls to program functions go through the slots, so the
 * patch links against the executable and earlier patches, never against copies of its own.
 */
export function planPatchUnit(a: UnitAnalysis, req: PatchUnitRequest): PatchUnit {
  const buf = a.preprocessed;
  const edits: Edit[] = [];
  const functions: PatchUnitFunction[] = [];
  const inPatch = (key: string) => req.changed.has(key) || req.added.has(key);
  const mangled = (key: string) => {
    const info = req.programFunctions.get(key);
    return info ? mangleKey(key, info.unitId) : undefined;
  };
  const slots = new Set<string>();

  for (const f of a.functions) {
    const key = f.model.key;
    if (!inPatch(key)) {
      edits.push({ start: f.body.start, end: f.body.end, text: ';' });
      continue;
    }
    const m = mangleKey(key, a.unit.id);
    const symbol = `${implName(m)}__${req.suffix}`;
    // The original name stays declared (unevaluated `__typeof__(&name)` in slot calls needs it).
    const original = buf.toString('latin1', f.definition.start, f.body.start).replace(/\s+/g, ' ').trim();
    edits.push({ start: f.definition.start, end: f.definition.start, text: `${original}; ${IMPL_DIAGNOSTICS.push}` });
    edits.push({ start: f.definition.end, end: f.definition.end, text: IMPL_DIAGNOSTICS.pop });
    // New bodies are exported (the descriptor in another object points at them).
    for (const kw of ['static', 'inline', '__inline', '__inline__']) {
      const t = findToken(buf, { start: f.definition.start, end: f.name.start }, kw);
      if (t) edits.push({ start: t.start, end: t.end, text: '' });
    }
    edits.push({ start: f.name.start, end: f.name.end, text: symbol });
    if (req.added.has(key)) {
      const slot = slotName(m);
      slots.add(slot);
      // Stub under the original name, so the new code can take the function's address.
      const header = buf.toString('latin1', f.definition.start, f.body.start);
      edits.push({ start: f.definition.start, end: f.definition.start, text: stubDefinition(header, slot) });
      // protected: exported (later patches bind to it) but not preemptible, so the stub's
      // rip-relative jump through it links into a shared object
      edits.push({
        start: f.definition.end,
        end: f.definition.end,
        text: ` __attribute__((visibility("protected"))) void *${slot} = (void *)&${symbol};`,
      });
      functions.push({ key, change: 'added', symbol, slot });
    } else {
      functions.push({ key, change: 'body', symbol });
    }
  }

  // Inside the patch's functions: calls through slots; addresses of static functions through
  // the pointer the executable exports (the static stub itself has no exported name).
  const inPatchFn = (fnKey: string | undefined) => fnKey !== undefined && inPatch(fnKey);
  for (const c of a.callSites) {
    if (!inPatchFn(c.function) || !c.direct || !c.calleeKey) continue;
    const m = mangled(c.calleeKey);
    if (!m) continue;
    slots.add(slotName(m));
    edits.push({ start: c.callee.start, end: c.callee.end, text: slotCall(buf.toString('latin1', c.callee.start, c.callee.end), slotName(m)) });
  }
  for (const r of a.references) {
    if (r.use !== 'address' || !inPatchFn(r.function)) continue;
    const info = req.programFunctions.get(r.key);
    if (!info?.isStatic || req.added.has(r.key)) continue;
    const ptr = addressName(mangleKey(r.key, info.unitId));
    edits.push({ start: r.range.start, end: r.range.end, text: `((__typeof__(&${r.name}))${ptr})` });
    edits.push({ start: 0, end: 0, text: `extern void *const ${ptr};` });
  }

  edits.push(...wrapBlockingCalls(a, inPatchFn));
  const late: Edit[] = [];
  placeUpdatePoints(a, req.updatePoints, edits, inPatchFn, late);
  const promoted = req.promotedStatics;
  const notPromoted = (key: string) => promoted !== undefined && !promoted.has(key);
  const renames: Edit[] = [];
  edits.push(...externalizeVariables(a, inPatchFn, req.addedVariables ?? new Set(), req.tables ?? new Set(), req.suffix, notPromoted, renames));
  // The records are exported for patch.c instead of registered in a section.
  const { edits: frameEdits, ...frames } = unitFrames(a, req.updatePoints, {
    selected: inPatch,
    implOf: (m) => `${implName(m)}__${req.suffix}`,
    registration: { suffix: req.suffix },
    initializer: (fnKey, local) => req.frameInitializers?.get(fnKey)?.get(local.name),
    // copied initializers name local statics as the patch unit does
    textOf: (start, end) => textWithEdits(a.preprocessed, start, end, renames),
  });
  edits.push(...frameEdits, ...late);

  // Every slot is declared up front: an added static function may be called above its definition
  // (dnsmasq's do_dump_packet, declared by a prototype), where the patch defines its slot.
  const own = new Set(functions.map((f) => f.slot));
  const decls = [...slots].map((s) => (own.has(s) ? `extern __attribute__((visibility("protected"))) void *${s};` : `extern void *${s};`));
  const prelude = [...PRELUDE, ...(frameEdits.length ? FRAME_PRELUDE : []), ...decls];
  edits.push({ start: 0, end: 0, text: prelude.join(' ') + '\n' });
  return { edits, functions, frames };
}

/**
 * Variables of the new unit become declarations of the running program's: `extern`, no
 * initializer; statics under the exported names dsu-cc gave them. Local statics of functions
 * that are not in the patch disappear with their bodies.
 */
function externalizeVariables(
  a: UnitAnalysis,
  inPatchFn: (fnKey: string | undefined) => boolean,
  added: ReadonlySet<string>,
  tables: ReadonlySet<string>,
  suffix: string,
  notPromoted: (key: string) => boolean,
  renames: Edit[],
): Edit[] {
  const buf = a.preprocessed;
  const edits: Edit[] = [];
  const specifierDone = new Set<number>();
  // The complete type of each variable, for declarations that leave an array's size to their initializer.
  const complete = new Map<string, string>();
  for (const v of a.variables) if (v.type && /\[\d+\]/.test(v.type)) complete.set(v.key, v.type);
  let renamed = 0;
  for (const v of a.variables) {
    if (v.function && !inPatchFn(v.function)) continue;
    // A static the running program left in place (its type is defined in its declaration) has no
    // exported name to refer to: the new code gets its own copy (planPatchUnit notes the writable ones).
    // One the patch adds (or renames) is not in the running program at all: it is defined below,
    // under the exported name, so that later patches find it.
    if (v.storage === 'static' && notPromoted(v.key) && !(added.has(v.key) && !v.function)) continue;
    if (tables.has(v.key)) {
      // A read-only table whose type changed keeps its new definition: statics as the unit's
      // own copy, an external one under a name of the patch (the program keeps the old symbol).
      if (v.storage !== 'static') {
        const end = declaratorEnd(buf, v.nameRange, v.definition.end);
        edits.push({ start: end, end, text: ` __asm__(${cString(`${v.name}__dsu_${suffix}`)})` });
      }
      continue;
    }
    const declEnd = declaratorEnd(buf, v.nameRange, v.definition.end);
    const sized = completeArrayEdit(buf, v.nameRange, declEnd, complete.get(v.key));
    if (sized && !(added.has(v.key) && !v.function)) edits.push(sized);
    // A local static is declared under a name of its own, as in the program (local-statics.ts).
    if (v.function && v.storage === 'static') {
      const r = renameLocalStatic(a, v, localStaticName(renamed++));
      edits.push(...r);
      renames.push(...r);
    }
    const kw = findToken(buf, { start: v.definition.start, end: v.nameRange.start }, v.storage === 'static' ? 'static' : 'extern');
    const label = v.storage === 'static' ? ` __asm__(${cString(staticSymbol(a.unit.id, v.key.split('::').slice(1)))})` : '';
    // A global the new version adds (or renames) is defined by the patch, initializer included.
    // A file-level static is defined under the exported name dsu-cc gives it in the new version,
    // so a later patch (built against that version) finds the value this patch carries.
    if (added.has(v.key) && !v.function) {
      if (v.storage === 'static' && kw && !specifierDone.has(kw.start)) {
        edits.push({ start: kw.start, end: kw.end, text: '' });
        specifierDone.add(kw.start);
      }
      if (v.storage === 'static') edits.push({ start: declEnd, end: declEnd, text: label });
      continue;
    }
    if (v.storage === 'static' && kw) {
      if (!specifierDone.has(kw.start)) edits.push({ start: kw.start, end: kw.end, text: 'extern' });
      specifierDone.add(kw.start);
    } else if (v.storage === 'none' && !specifierDone.has(v.definition.start)) {
      edits.push({ start: v.definition.start, end: v.definition.start, text: 'extern ' });
      specifierDone.add(v.definition.start);
    }
    edits.push({ start: declEnd, end: v.definition.end, text: label });
  }
  return edits;
}
