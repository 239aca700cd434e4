import type { Finding } from '@dsu/patch-format';
import type { SafetyContext } from './safety-context';

/**
 * A function whose signature changes must be replaced together with every caller, and must not
 * be reachable through a stored pointer: old code would pass the old arguments to the new body.
 */
export function signature(ctx: SafetyContext): Finding[] {
  const findings: Finding[] = [];
  const inPatch = new Set(ctx.manifest.functions.map((f) => f.key));
  for (const f of ctx.manifest.functions.filter((x) => x.change === 'signature')) {
    const old = ctx.from.functions[f.key];
    const next = ctx.to.functions[f.key];
    const sig = `${old?.signature ?? '?'} -> ${next?.signature ?? '?'}`;
    const left = [...new Set(ctx.graph.callersOf(f.key).map((e) => e.caller))].filter(
      (c) => !inPatch.has(c) && c in ctx.to.functions,
    );
    if (left.length)
      findings.push({
        rule: 'signature',
        severity: 'error',
        location: f.key,
        message: `the signature of ${f.key}() changes (${sig}), but its callers ${left.map((c) => `${c}()`).join(', ')} are not in the patch; they would call it the old way`,
      });
    if (old?.addressTaken)
      findings.push({
        rule: 'signature',
        severity: 'error',
        location: f.key,
        message: `the signature of ${f.key}() changes (${sig}) and its address is taken in the running program: a stored pointer would call the new body with the old arguments. Add a function with the new signature under a new name instead`,
      });
  }
  return findings;
}
