import type { ProgramModel } from '@dsu/c-frontend';
import type { PatchManifest } from '@dsu/patch-format';

/** What a patch changes, in the running (old) program's names. */
export interface PatchScope {
  /** Functions whose code the patch replaces (body, signature, or a use of a changed type), with why. */
  replaced: Map<string, string>;
  /** Types whose layout changes, with every typedef that names them. */
  changedTypes: Set<string>;
  /** Globals whose type changes, that are renamed or removed. */
  changedGlobals: Set<string>;
}

/** The patch's changes as the safety rules see them. */
export function patchScope(from: ProgramModel, manifest: PatchManifest): PatchScope {
  const replaced = new Map<string, string>();
  for (const f of manifest.functions)
    if (f.change === 'body' || f.change === 'signature')
      replaced.set(f.key, f.reasons?.join('; ') || `${f.change} changed`);
  const changedTypes = new Set(manifest.types.map((t) => t.name));
  // typedefs name changed types too: `conn_t` for `struct conn`, transitively
  for (let grew = true; grew;) {
    grew = false;
    for (const t of Object.values(from.types)) {
      if (t.kind === 'typedef' && t.target && changedTypes.has(t.target) && !changedTypes.has(t.key)) {
        changedTypes.add(t.key);
        grew = true;
      }
    }
  }
  const changedGlobals = new Set(
    manifest.globals
      .filter((g) => g.change === 'type' || g.change === 'removed' || g.change === 'renamed')
      .map((g) => g.from ?? g.key),
  );
  return { replaced, changedTypes, changedGlobals };
}
