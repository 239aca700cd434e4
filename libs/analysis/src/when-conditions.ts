import type { Finding } from '@dsu/patch-format';
import type { SafetyContext } from './safety-context';

/**
 * When-conditions from `patch.yaml`: `points` (only there) and `inactive` (only while none of the
 * listed functions may be on the stack) are decided here, per update point. `predicate` (compiled
 * into the patch) and `deadlineMs` are enforced by the runtime at update time.
 */
export function whenConditions(ctx: SafetyContext): Finding[] {
  const when = ctx.when;
  if (!when) return [];
  const findings: Finding[] = [];
  for (const [point, sites] of ctx.sites) {
    if (when.points && !when.points.includes(point)) {
      findings.push({
        rule: 'when-condition',
        severity: 'warning',
        location: point,
        updatePoints: [point],
        message: `'${point}' is not among the update points patch.yaml allows (${when.points.join(', ')})`,
      });
      continue;
    }
    for (const site of sites)
      for (const f of ctx.chains(site).frames) {
        const fn = ctx.from.functions[f.function];
        if (!fn || !when.inactive?.some((n) => n === fn.key || n === fn.name)) continue;
        findings.push({
          rule: 'when-condition',
          severity: 'warning',
          location: `${f.function} (${ctx.where(f.function, f.line)})`,
          updatePoints: [point],
          message: `at '${point}' ${fn.name}() may be active (${ctx.where(f.function, f.line)}), and patch.yaml requires it not to be`,
        });
      }
  }
  for (const p of when.points ?? [])
    if (!ctx.sites.has(p))
      findings.push({
        rule: 'when-condition',
        severity: 'error',
        location: p,
        message: `patch.yaml allows update point '${p}', which the running program does not have (it has: ${[...ctx.sites.keys()].sort().join(', ')})`,
      });
  if (when.predicate !== undefined)
    findings.push({
      rule: 'when-condition',
      severity: 'info',
      location: 'patch.yaml',
      message: `the runtime applies the patch only when '${when.predicate}' is true at the update point (evaluated with every thread stopped)`,
    });
  if (when.deadlineMs !== undefined)
    findings.push({
      rule: 'when-condition',
      severity: 'info',
      location: 'patch.yaml',
      message: `the update happens within ${when.deadlineMs} ms of the request or not at all`,
    });
  return findings;
}
