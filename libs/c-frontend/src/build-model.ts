import type { FunctionReference, UnitAnalysis } from './unit-analysis';
import {
  PROGRAM_MODEL_FORMAT,
  type FunctionModel,
  type GlobalModel,
  type ProgramModel,
  type TypeModel,
} from './program-model';

/**
 * The part of a unit's analysis that the program model needs: small enough to keep next to the
 * object file (dsu-cc writes it to `<obj>.dsu.json`) and merge at link time.
 */
export interface UnitSummary {
  unit: UnitAnalysis['unit'];
  functions: { model: UnitAnalysis['functions'][number]['model'] }[];
  globals: UnitAnalysis['globals'];
  types: UnitAnalysis['types'];
  references: Pick<FunctionReference, 'key' | 'use'>[];
  /** Whole instances used as raw bytes or handed outside the program (added). */
  rawUses?: UnitAnalysis['rawUses'];
  /** Instances of program types from memory dsu does not track (added). */
  untracked?: UnitAnalysis['untracked'];
}

export function summarizeUnit(a: UnitAnalysis): UnitSummary {
  return {
    unit: a.unit,
    functions: a.functions.map((f) => ({ model: f.model })),
    globals: a.globals,
    types: a.types,
    references: a.references.filter((r) => r.use === 'address').map((r) => ({ key: r.key, use: r.use })),
    rawUses: a.rawUses,
    untracked: a.untracked,
  };
}

/**
 * Merges analyzed units into one program model. External functions defined in two units are an
 * error; statics stay apart by their `unit::name` keys; direct calls and address-taken uses
 * resolve across units; calls to functions no unit defines move to `externalCalls`.
 */
export function buildProgramModel(
  program: string,
  buildId: string,
  units: readonly UnitSummary[],
): ProgramModel {
  const functions: Record<string, FunctionModel> = {};
  const warnings: string[] = [];
  const globals: Record<string, GlobalModel> = {};
  const types: Record<string, TypeModel> = {};

  const seen = new Set<string>();
  for (const u of units) {
    if (seen.has(u.unit.path)) throw new Error(`unit ${u.unit.path} is given twice`);
    seen.add(u.unit.path);
  }
  for (const u of units) {
    for (const f of u.functions) {
      const prev = functions[f.model.key];
      if (prev && prev.isInline && f.model.isInline) {
        // C99 inline definitions from a shared header: no external symbol, one copy per unit
        if (prev.bodyHash !== f.model.bodyHash) {
          warnings.push(`inline function '${f.model.name}' differs between ${prev.unit} and ${f.model.unit}`);
        }
        continue;
      }
      if (prev) {
        throw new Error(
          `function '${f.model.name}' is defined in both ${prev.unit} and ${f.model.unit} ` +
            `(duplicate external definition; make one of them static or remove it)`,
        );
      }
      functions[f.model.key] = structuredClone(f.model);
    }
  }
  for (const u of units) {
    for (const g of u.globals) {
      const prev = globals[g.key];
      if (prev && prev.type !== g.type) {
        warnings.push(
          `global '${g.key}' is defined in ${prev.unit} as '${prev.type}' and in ${g.unit} as '${g.type}'`,
        );
      }
      if (!prev) globals[g.key] = { ...g };
    }
    for (const t of u.types) {
      const prev = types[t.key];
      if (!prev) {
        types[t.key] = structuredClone(t);
      } else if (prev.layoutHash !== t.layoutHash) {
        const key = `${u.unit.path}::${t.key}`;
        warnings.push(
          `type '${t.key}' has a different layout in ${u.unit.path} than in ${prev.unit}; kept as '${key}'`,
        );
        types[key] = { ...structuredClone(t), key };
      }
    }
  }
  // Whole instances as raw bytes (I/O, memcpy to a byte buffer) or in code outside the program:
  // their layout is an external contract, so patches may not change it.
  for (const u of units) {
    for (const r of u.rawUses ?? []) {
      if (r.kind === 'external' && functions[r.callee]) continue;
      const t = types[r.type];
      if (!t) continue;
      const target = t.kind === 'typedef' && t.target ? types[t.target] : undefined;
      for (const x of [t, target]) {
        if (!x || x.notUpdatableReason?.startsWith('whole instances')) continue;
        if (x.kind !== 'struct' && !(x.kind === 'typedef' && x.fields.length)) continue;
        const how = r.kind === 'io' ? 'read or written as raw bytes by' : 'handed to the outside function';
        const hadRoom = x.capacity > x.size;
        x.updatable = false;
        x.notUpdatableReason =
          `whole instances are ${how} '${r.callee}' (in ${r.function})` +
          (hadRoom
            ? '; its room is reserved but patches may not change its layout (opt out with DSU_NO_ROOM to keep the C layout)'
            : '');
      }
    }
  }
  for (const u of units) {
    for (const a of u.untracked ?? []) {
      const t = types[a.type];
      if (!t || !(t.capacity > t.size)) continue;
      const note = `instances of '${a.type}' may come from ${a.source} (in ${a.function}), which dsu does not track: a data update cannot find them`;
      t.untrackedSources = [...new Set([...(t.untrackedSources ?? []), note])];
      warnings.push(note);
    }
  }
  for (const u of units) {
    for (const r of u.references) {
      if (r.use === 'address' && functions[r.key]) functions[r.key].addressTaken = true;
    }
  }
  for (const f of Object.values(functions)) {
    const external = f.calls.filter((k) => !functions[k]);
    f.calls = f.calls.filter((k) => functions[k]);
    f.externalCalls = external;
    f.globalsRead = f.globalsRead.filter((k) => globals[k]);
    f.globalsWritten = f.globalsWritten.filter((k) => globals[k]);
  }

  const model: ProgramModel = {
    format: PROGRAM_MODEL_FORMAT,
    program,
    buildId,
    units: units.map((u) => ({ ...u.unit })),
    functions: sortKeys(functions),
    globals: sortKeys(globals),
    types: sortKeys(types),
  };
  if (warnings.length) model.warnings = warnings;
  return model;
}

function sortKeys<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
