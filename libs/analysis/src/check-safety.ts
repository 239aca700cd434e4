import type { DeniedPoint, Finding, SafetyVerdict } from '@dsu/patch-format';
import { activeness } from './activeness';
import { capacity } from './capacity';
import { conFreeness } from './con-freeness';
import { initializer } from './initializer';
import { removedReferenced } from './removed-referenced';
import { safetyContext, type SafetyInput } from './safety-context';
import { signature } from './signature';
import { startupGlobal } from './startup-global';
import { untrackedInstances } from './untracked-instances';
import { versionConsistency } from './version-consistency';
import { whenConditions } from './when-conditions';

/** The rules that judge update points, by id: each may be run alone (the safety evaluation does). */
export const POINT_RULES = {
  activeness,
  'con-freeness': conFreeness,
  'version-consistency': versionConsistency,
  'when-condition': whenConditions,
} as const;

export type PointRule = keyof typeof POINT_RULES;

/**
 * The safety analysis of a patch (DESIGN.md §8): every rule over the two program models and the
 * manifest, and the verdict. An update point is denied by any point rule that finds a problem at
 * one of its sites (a finding with `updatePoints`; an 'info' finding never denies, e.g. an active
 * frame the runtime rebuilds in the new code); the patch is approved when no finding is an error
 * and some point is allowed.
 * `rules` restricts the point rules (default: all).
 */
export function checkSafety(
  input: SafetyInput,
  rules: readonly PointRule[] = Object.keys(POINT_RULES) as PointRule[],
): SafetyVerdict {
  const ctx = safetyContext(input);
  const findings: Finding[] = [];
  if (Object.values(input.from.functions).every((f) => f.flow === undefined))
    findings.push({
      rule: 'bundle-integrity',
      severity: 'error',
      location: input.from.program,
      message: `the running build's program model has no control-flow facts (built by an older dsu-cc); rebuild both versions with this dsu and generate the patch again`,
    });
  for (const r of rules) findings.push(...POINT_RULES[r](ctx));
  findings.push(
    ...capacity(ctx),
    ...untrackedInstances(ctx),
    ...signature(ctx),
    ...initializer(ctx),
    ...startupGlobal(ctx),
    ...removedReferenced(input.from, input.to),
  );
  const denied = new Map<string, Set<string>>();
  for (const f of findings)
    for (const p of f.updatePoints ?? []) denied.set(p, (denied.get(p) ?? new Set()).add(f.rule));
  const names = [...ctx.sites.keys()].sort();
  const allowed = names.filter((n) => !denied.has(n));
  const deniedList: DeniedPoint[] = names
    .filter((n) => denied.has(n))
    .map((n) => ({ name: n, rules: [...(denied.get(n) as Set<string>)].sort() }));
  if (allowed.length === 0 && names.length > 0)
    findings.push({
      rule: 'activeness',
      severity: 'error',
      location: input.from.program,
      message: `no update point of the running program is safe for this patch (${deniedList.map((d) => `${d.name}: ${d.rules.join(', ')}`).join('; ')}); add an update point where none of the changed code is active, e.g. DSU_UPDATE_POINT at the head of the main loop, or fix what stops the runtime from rebuilding the active frames in the new code (each denial above says what)`,
    });
  if (names.length === 0)
    findings.push({
      rule: 'activeness',
      severity: 'error',
      location: input.from.program,
      message: `the running program has no update point and no wrapped blocking call; add DSU_UPDATE_POINT("name") or build with --update-point FUNC:loop`,
    });
  return {
    verdict: findings.some((f) => f.severity === 'error') ? 'rejected' : 'approved',
    findings,
    updatePoints: { allowed, denied: deniedList },
  };
}
