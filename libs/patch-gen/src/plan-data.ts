import { carriedGlobalSource, stateTransformerSource, whenConditionSource } from './c-templates';
import {
  C_INT,
  findInstances,
  intInfo,
  transformerSource,
  typeDescriptorSource,
  type DataSpec,
  type FieldPlan,
  type InstanceEmbed,
  type InstanceRange,
} from './data-patch';
import { UnsupportedChangeError, type BuildModel, type PatchContents } from './plan-contents';

/**
 * Phase 2 of `dsu patch`: the data changes of a patch whose contents are decided — the layouts
 * every patch unit uses, a transformer and a type descriptor per changed type, where its instances
 * live, the when-condition and the state transformer (renamed globals, patch.yaml's code), and the
 * units that carry all of it. Pure (C text only, via data-patch.ts and c-templates.ts); throws
 * UnsupportedChangeError for what only shows while generating the code.
 */

/** The data part of a patch (output of `planData`). */
export interface DataPlan {
  /** Capacities of the running program (types with room): every patch unit lays its structs out with them. */
  capacity: Map<string, number>;
  /** `capacity` plus the room the new build gave types new in this version. */
  layoutCapacity: Map<string, number>;
  /** Types the patch's code keeps in their C layout (no room in the running program, or in the new build). */
  keepLayout: Set<string>;
  /** Changed type → how each field of the new layout gets its value (manifest `types[].fields`). */
  fieldPlans: Record<string, FieldPlan[]>;
  /** Changed type → where its instances live outside the heap (manifest `types[].instances`). */
  instances: Record<string, { ranges: InstanceRange[]; embeds: InstanceEmbed[] }>;
  /** Findings for the manifest's `notes` (the type diff's, then the instance search's). */
  notes: string[];
  /** Unit paths (new version) the patch rebuilds: those of its functions, changed types, renamed globals, the when-condition. */
  units: Set<string>;
  /** Unit path → generated C appended to its patch unit, in order (transformers and type descriptors, when-condition, state transformer). */
  unitCode: Map<string, string[]>;
  /** Name of the state transformer the descriptor points at, when there is one. */
  stateTransformer?: string;
}

/**
 * Plans the data changes of a patch with `contents`; `suffix` makes the generated names unique to
 * the patch (the one the patch units use).
 */
export function planData(
  from: BuildModel,
  to: BuildModel,
  contents: PatchContents,
  opts: { spec?: DataSpec; suffix: string },
): DataPlan {
  const { spec, suffix } = opts;
  const { types, changedTypes, oldChangedTypes, lazy } = contents;
  const renames = contents.globals.filter((g) => g.change === 'renamed');
  // Capacities of the running program: every patch unit lays its structs out with them.
  const capacity = new Map<string, number>();
  for (const t of Object.values(from.types)) if (t.capacity > t.size) capacity.set(t.key, t.capacity);
  // Types the running program keeps in their C layout (opted out, used as raw bytes, not
  // updatable) must not get room in the patch's code either: its sizeof, array strides and
  // embedded offsets would disagree with the running program's. Types new in this version are
  // laid out as the new build laid them out.
  const keepLayout = new Set<string>();
  const layoutCapacity = new Map(capacity);
  for (const t of Object.values(from.types)) if (!capacity.has(t.key)) keepLayout.add(t.key);
  for (const t of Object.values(to.types)) {
    if (from.types[t.key]) continue;
    if (t.capacity > t.size) layoutCapacity.set(t.key, t.capacity);
    else keepLayout.add(t.key);
  }
  // Transformers and type descriptors go into the unit that defines the new layout.
  const typeUnit = new Map(types.changed.map((c) => [c.key, c.next.unit ?? '']));
  const unitCode = new Map<string, string[]>();
  const append = (unit: string, code: string[]) =>
    unitCode.set(unit, [...(unitCode.get(unit) ?? []), ...code]);
  const fieldPlans: Record<string, FieldPlan[]> = {};
  const instances: Record<string, { ranges: InstanceRange[]; embeds: InstanceEmbed[] }> = {};
  const notes = [...types.notes];
  for (const c of types.changed) {
    const x = transformerSource(c, from, to, changedTypes, suffix, spec?.types?.[c.key], lazy);
    fieldPlans[c.key] = x.fields;
    // A lazy transformer runs after the update is applied: a check that fails then cannot refuse
    // anything, so the process would have to stop. Conversions that can fail stay eager.
    const checked = lazy.has(c.key) ? x.fields.filter((f) => /checked/.test(f.how)) : [];
    if (checked.length > 0)
      throw new UnsupportedChangeError([
        `type '${c.key}' is transformed lazily, but ${checked.map((f) => `'${f.field}' (${f.how})`).join(', ')} can fail, and a lazy transformer fails only after the update is applied; ` +
          `transform this type eagerly (patch.yaml: types: { '${c.key}': { mode: eager } }), or give the field a default or custom code in patch.yaml`,
      ]);
    const inst = findInstances(c.key, from, oldChangedTypes);
    instances[c.key] = inst;
    notes.push(...inst.notes);
    append(typeUnit.get(c.key) ?? '', [
      x.code,
      typeDescriptorSource(c, suffix, inst, lazy.has(c.key) ? 'lazy' : 'eager'),
    ]);
  }

  const units = new Set([...contents.changed, ...contents.added].map((k) => to.functions[k].unit));
  for (const u of typeUnit.values()) units.add(u);
  // A read-only table the patch defines anew is defined in its own unit.
  for (const k of contents.tables) units.add(to.globals[k].unit);
  // The spec's state transformer runs once, after every instance is transformed, in the first
  // patch unit (where the new version's declarations are in scope).
  // Renamed globals are carried by the same function, in the unit that defines the new name.
  for (const r of renames) units.add(to.globals[r.key].unit);
  const predicate = spec?.when?.predicate;
  if (predicate !== undefined) {
    // compiled where main() is (its unit's globals are in scope), as the runtime's condition
    const unit = to.functions.main?.unit ?? [...units].sort()[0] ?? to.units[0]?.path;
    if (unit === undefined)
      throw new UnsupportedChangeError([
        'patch.yaml gives a when-condition, but the program has no unit to compile it in',
      ]);
    units.add(unit);
    append(unit, [whenConditionSource(predicate)]);
  }
  const stateTransformer = spec?.stateTransformer || renames.length ? `__dsu_state_xf__${suffix}` : undefined;
  const stateUnit = stateTransformer
    ? renames.length
      ? to.globals[renames[0].key].unit
      : [...units].sort()[0]
    : undefined;
  const promoted: Record<string, string> = {};
  for (const u of from.instrumentation.units) Object.assign(promoted, u.plan.promotedStatics ?? {});
  const carried = renames.map((r, i) => {
    const old = from.globals[r.from as string];
    const symbol = old.linkage === 'external' ? old.name : promoted[old.key];
    if (!symbol)
      throw new UnsupportedChangeError([
        `global '${old.key}' (renamed to '${r.key}') has no exported name in the running program; its value cannot be carried`,
      ]);
    const next = to.globals[r.key];
    const names = {
      key: r.key,
      oldKey: old.key,
      oldType: old.type,
      newType: next.type,
      symbol,
      name: next.name,
    };
    // integers only when the type changes (checked by planContents): read the old width, assign, check it survived
    return next.type !== old.type
      ? carriedGlobalSource(i, names, {
          oldCType: C_INT(intInfo(from, old.type) as { size: number; signed: boolean }),
        })
      : carriedGlobalSource(i, names);
  });
  if (stateTransformer && stateUnit !== undefined)
    append(stateUnit, [stateTransformerSource(stateTransformer, carried, spec?.stateTransformer ?? '')]);

  return {
    capacity,
    layoutCapacity,
    keepLayout,
    fieldPlans,
    instances,
    notes,
    units,
    unitCode,
    stateTransformer,
  };
}
