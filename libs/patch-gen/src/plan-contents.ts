import type { LoadedBuild } from './build-dir';
import {
  arrayOf,
  changedNames,
  diffTypes,
  intInfo,
  type DataDiff,
  type DataSpec,
  type TypeChange,
} from './data-patch';
import { diffFunctions, type FunctionDiff } from './model-diff';

/**
 * Phase 1 of `dsu patch`: what the patch contains, decided from the two program models alone
 * (pure: no file system, no compiler). Which functions it carries and why (body, added,
 * signature, the ripple of a signature or layout change to callers and users, the callers that
 * may have inlined a replaced function), how globals and changed types are carried, and what it
 * cannot carry (refusals).
 */

/** Thrown when the new version changes things a patch cannot carry; `reasons` lists them all. */
export class UnsupportedChangeError extends Error {
  constructor(readonly reasons: string[]) {
    super(`the new version changes things a code-only patch cannot carry:\n  - ${reasons.join('\n  - ')}`);
    this.name = 'UnsupportedChangeError';
  }
}

export interface BuildPatchOptions {
  /** The user's spec (patch.yaml, parsed): renames, defaults, custom transformers. */
  spec?: DataSpec;
  /** How instances are transformed (default eager); patch.yaml may set `mode` per type. */
  transform?: 'eager' | 'lazy';
  /** Told each phase as it starts (the CLI's progress line on a terminal). */
  onPhase?: (phase: 'contents' | 'data and frames' | 'write and compile') => void;
}

/** A program model as `dsu build` writes it (with the instrumentation plan of each unit). */
export type BuildModel = LoadedBuild['model'];

/** What the patch does with one global (a manifest `globals` entry). */
export interface GlobalChange {
  key: string;
  change: 'added' | 'removed' | 'type' | 'renamed' | 'initializer';
  /** `renamed`: the running version's key. */
  from?: string;
  note?: string;
}

/** The contents of a patch (output of `planContents`). */
export interface PatchContents {
  /** Functions by key: body / signature changed, added, removed (each sorted). */
  diff: FunctionDiff;
  /** Changed struct layouts and the notes for the manifest (its refusals are in `refusals`). */
  types: DataDiff;
  /** Type keys of the new version that name a changed type (the type, its typedefs) → the changed type. */
  changedTypes: Map<string, string>;
  /** The same for the running version. */
  oldChangedTypes: Map<string, string>;
  /** Manifest `globals`: added, removed, renamed (patch.yaml), changed initializers, transformed instances. */
  globals: GlobalChange[];
  /** Read-only tables whose type changed: the patch units define their new contents. */
  tables: Set<string>;
  /** Changed types transformed lazily (the others eagerly). */
  lazy: Set<string>;
  /** Every function whose new code the patch carries → why (manifest `reasons`), in discovery order. */
  reasons: Map<string, string[]>;
  /** Keys in `reasons` the running version has (the patch replaces their code). */
  changed: Set<string>;
  /** Keys the new version adds. */
  added: Set<string>;
  /** Keys whose signature changed (a subset of `changed`). */
  signature: Set<string>;
  /** What the patch cannot carry; not empty → the patch is refused (UnsupportedChangeError). */
  refusals: string[];
  /** No function or struct layout changed, none was added or removed: nothing to patch. */
  empty: boolean;
}

/**
 * Decides what a patch from `from` to `to` contains. Pure and total: refusals are returned, not
 * thrown (`refusals`, `empty`), so the caller decides how to report them.
 */
export function planContents(from: BuildModel, to: BuildModel, opts: BuildPatchOptions = {}): PatchContents {
  const diff = diffFunctions(from, to);
  const types = diffTypes(from, to);
  const changedTypes = changedNames(to, types.changed);
  const oldChangedTypes = changedNames(from, types.changed);
  const globals = globalChanges(from, to, changedTypes, opts.spec);
  const refusals = [...types.refusals, ...globals.reasons];
  const lazy = lazyTypes(types.changed, changedTypes, opts, refusals);
  // Why each function is in the patch (manifest `reasons`).
  const reasons = new Map<string, string[]>();
  const because = (k: string, r: string) => reasons.set(k, [...(reasons.get(k) ?? []), r]);
  for (const k of diff.body) because(k, 'body changed');
  for (const k of diff.added) because(k, 'added');
  for (const k of diff.signature) {
    because(k, `signature changed (${from.functions[k].signature} -> ${to.functions[k].signature})`);
    if (from.functions[k].addressTaken || to.functions[k].addressTaken) {
      refusals.push(
        `function '${k}' changes its signature and its address is taken: stored pointers would call it with the old signature`,
      );
    }
    for (const f of Object.values(to.functions)) {
      if (f.calls.includes(k) && from.functions[f.key])
        because(f.key, `calls '${k}', whose signature changed`);
    }
  }
  // Ripple: code compiled against the old layout must not touch the new one.
  for (const f of Object.values(to.functions)) {
    if (!from.functions[f.key]) continue;
    const used = f.typesUsed.filter((t) => changedTypes.has(t));
    const oldUsed = (from.functions[f.key].typesUsed ?? []).filter((t) => oldChangedTypes.has(t));
    for (const t of new Set([...used, ...oldUsed]))
      because(
        f.key,
        `uses '${changedTypes.get(t) ?? oldChangedTypes.get(t)}' concretely (its layout changed)`,
      );
  }
  // A read-only table the patch defines anew: old code compiled against the old one goes.
  for (const f of Object.values(to.functions)) {
    if (!from.functions[f.key]) continue;
    for (const k of f.globalsRead.filter((g) => globals.tables.has(g)))
      because(f.key, `reads '${k}', a read-only table the patch defines anew`);
  }
  // Inlining: the running build let some callers call (and inline) a function directly; when
  // that function is replaced, so are they, and their own inlining callers, transitively.
  const inlinedInto = new Map<string, string[]>();
  for (const u of from.instrumentation.units) {
    for (const [caller, callee] of u.plan.inlinable ?? [])
      inlinedInto.set(callee, [...(inlinedInto.get(callee) ?? []), caller]);
  }
  const pending = [...reasons.keys(), ...diff.removed];
  for (let k = pending.shift(); k !== undefined; k = pending.shift()) {
    for (const caller of inlinedInto.get(k) ?? []) {
      if (!to.functions[caller] || !from.functions[caller]) continue;
      const first = !reasons.has(caller);
      because(caller, `may have inlined '${k}', which the patch replaces`);
      if (first) pending.push(caller);
    }
  }
  const added = new Set(diff.added);
  return {
    diff,
    types,
    changedTypes,
    oldChangedTypes,
    globals: globals.entries,
    tables: globals.tables,
    lazy,
    reasons,
    changed: new Set([...reasons.keys()].filter((k) => !added.has(k))),
    added,
    signature: new Set(diff.signature),
    refusals,
    empty:
      diff.body.length +
        diff.added.length +
        diff.removed.length +
        diff.signature.length +
        types.changed.length ===
      0,
  };
}

/**
 * Types transformed lazily: `--transform lazy`, or `mode: lazy` per type in patch.yaml. A lazy
 * type nested in an eager one (or the reverse) is refused: the eager transformer would run on
 * instances whose member is still in an older layout. Refusals are appended to `unsupported`.
 */
function lazyTypes(
  changed: readonly TypeChange[],
  names: ReadonlyMap<string, string>,
  opts: BuildPatchOptions,
  unsupported: string[],
): Set<string> {
  const modeOf = (k: string) => opts.spec?.types?.[k]?.mode ?? opts.transform ?? 'eager';
  for (const c of changed) {
    const m = modeOf(c.key);
    if (m !== 'eager' && m !== 'lazy')
      unsupported.push(`patch.yaml gives type '${c.key}' mode '${String(m)}'; use eager or lazy`);
  }
  const lazy = new Set(changed.filter((c) => modeOf(c.key) === 'lazy').map((c) => c.key));
  for (const c of changed) {
    for (const f of c.next.fields) {
      const inner = names.get(arrayOf(f.type).base);
      if (inner && inner !== c.key && lazy.has(inner) !== lazy.has(c.key)) {
        unsupported.push(
          `type '${c.key}' (${modeOf(c.key)}) embeds '${inner}' (${modeOf(inner)}); nested changed types must use the same transformation mode`,
        );
      }
    }
  }
  return lazy;
}

/** Global changes: what the patch does with each, and the changes it cannot carry. */
function globalChanges(
  a: BuildModel,
  b: BuildModel,
  changedTypes: ReadonlyMap<string, string>,
  spec: DataSpec | undefined,
): { reasons: string[]; entries: GlobalChange[]; tables: Set<string> } {
  const reasons: string[] = [];
  const entries: GlobalChange[] = [];
  const tables = new Set<string>();
  const renamedFrom = new Map(Object.entries(spec?.globalRenames ?? {}));
  for (const [k, g] of Object.entries(b.globals)) {
    const old = a.globals[k];
    if (!old) {
      const was = renamedFrom.get(k);
      const prev = was ? a.globals[was] : undefined;
      if (was && !prev)
        reasons.push(
          `patch.yaml renames global '${was}' to '${k}', but the running version has no global '${was}'`,
        );
      else if (was && prev && prev.type !== g.type && !(intInfo(a, prev.type) && intInfo(b, g.type)))
        reasons.push(
          `patch.yaml renames global '${was}' to '${k}', but its type changes from '${prev.type}' to '${g.type}'; only integer types are converted`,
        );
      else if (was && prev && prev.type !== g.type)
        entries.push({
          key: k,
          change: 'renamed',
          from: was,
          note: `defined by the patch; the running value is converted from '${prev.type}' to '${g.type}' at update time (a value that does not fit refuses the update)`,
        });
      else if (was)
        entries.push({
          key: k,
          change: 'renamed',
          from: was,
          note: 'defined by the patch; the running value is copied at update time',
        });
      else entries.push({ key: k, change: 'added', note: 'defined by the patch with its new initializer' });
    } else if (old.type !== g.type && readOnlyTable(k, old.type, g.type, a, b)) {
      // Nothing in it can have changed at run time: the new code gets the new table.
      const why = readOnlyObject(old.type) && readOnlyObject(g.type) ? 'a read-only table' : 'a table no function of either version writes';
      entries.push({
        key: k,
        change: 'type',
        note: `${why} ('${old.type}' -> '${g.type}'): the patch defines its new contents; the code that reads it is replaced`,
      });
      tables.add(k);
    } else if (old.type !== g.type) {
      reasons.push(
        `global '${k}' changes type from '${old.type}' to '${g.type}'; its storage in the running program cannot change size or type. ` +
          `Give it a new name in the new version and list the rename in patch.yaml (globalRenames: { <new>: '${k}' }): ` +
          `the patch defines the new global and carries the running value (integers are converted)`,
      );
    } else {
      if (changedTypes.has(arrayOf(g.type).base)) {
        entries.push({
          key: k,
          change: 'type',
          note: `instances of '${changedTypes.get(arrayOf(g.type).base)}' transformed`,
        });
      }
      if ((old.initHash ?? '') !== (g.initHash ?? '')) {
        entries.push({
          key: k,
          change: 'initializer',
          note: 'its initializer changed; the running value is kept (set it in the state transformer if needed)',
        });
      }
    }
  }
  for (const k of Object.keys(a.globals)) {
    if (!(k in b.globals) && ![...renamedFrom.values()].includes(k))
      entries.push({ key: k, change: 'removed', note: 'stays in the program, unused by new code' });
  }
  return { reasons, entries, tables };
}

/**
 * A table whose running contents are its initializer's: a const object, or an array (of
 * `const char *` names, say) that no function of either version writes.
 */
function readOnlyTable(key: string, oldType: string, newType: string, a: BuildModel, b: BuildModel): boolean {
  if (readOnlyObject(oldType) && readOnlyObject(newType)) return true;
  const isArray = (t: string) => /\[\d*\]$/.test(t);
  const written = (m: BuildModel) => Object.values(m.functions).some((f) => f.globalsWritten.includes(key));
  return isArray(oldType) && isArray(newType) && !written(a) && !written(b);
}

/**
 * The object itself is read-only (`const struct option[173]`, `char *const[4]`; not
 * `const char *[4]`, whose pointers can be changed), so the running program holds no state in it.
 */
export function readOnlyObject(type: string): boolean {
  const t = type.replace(/(\s*\[\d*\])+$/, '').trim();
  const star = t.lastIndexOf('*');
  return /\bconst\b/.test(star < 0 ? t : t.slice(star + 1));
}
