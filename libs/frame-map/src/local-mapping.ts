/**
 * Stack-frame mapping (DESIGN.md §7, after UpStare): how the locals of an active function's old
 * frame become the locals of its new frame. The default rule: a new local takes the old local of
 * the same name when the types match; otherwise it needs a conversion or an initializer from the
 * user's spec, and until it has one the mapping is incomplete.
 */
export interface LocalVar {
  name: string;
  type: string;
}

export type LocalMapping =
  | { local: string; from: 'old-local'; oldLocal: string }
  | { local: string; from: 'initializer'; expression: string }
  | { local: string; from: 'conversion'; oldLocal: string; expression: string }
  | { local: string; from: 'unmapped'; reason: string };

export interface LocalOverride {
  /** C expression over the old locals (`old.<name>`) or a constant. */
  expression: string;
  /** When set, the expression converts this old local. */
  oldLocal?: string;
}

export function mapLocals(
  oldLocals: readonly LocalVar[],
  newLocals: readonly LocalVar[],
  overrides: Readonly<Record<string, LocalOverride>> = {},
): LocalMapping[] {
  const byName = new Map(oldLocals.map((l) => [l.name, l]));
  return newLocals.map((l): LocalMapping => {
    const o = overrides[l.name];
    if (o) return o.oldLocal ? { local: l.name, from: 'conversion', oldLocal: o.oldLocal, expression: o.expression } : { local: l.name, from: 'initializer', expression: o.expression };
    const old = byName.get(l.name);
    if (!old) return { local: l.name, from: 'unmapped', reason: `new local '${l.name}' has no old counterpart; give it an initializer in patch.yaml` };
    if (old.type !== l.type) {
      return { local: l.name, from: 'unmapped', reason: `local '${l.name}' changed type from '${old.type}' to '${l.type}'; give a conversion in patch.yaml` };
    }
    return { local: l.name, from: 'old-local', oldLocal: old.name };
  });
}
