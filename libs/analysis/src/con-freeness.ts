import type { Finding } from '@dsu/patch-format';
import type { SafetyContext } from './safety-context';
import { stepsAround, type Frame } from './stack-frames';
import type { PointSite } from './update-sites';

/**
 * Con-freeness (Stoyle et al.; Ginseng's updateability analysis): at each update point, the types
 * (and globals) that old code which may still run after it — the rest of the point's function and
 * of every caller after its call site, up to the thread's entry — uses concretely (member access,
 * sizeof, by-value copies). A point is denied when the patch changes one of them: that code would
 * read an instance in its new layout with the old offsets. A frame of a replaced function whose
 * frames the runtime rebuilds (frame-rebuild.ts) resumes in the new code, so its old code's uses
 * do not count: the finding is an 'info'. Frames of unchanged functions rebuilt in the same code
 * still run old code, so their findings stay.
 */
export function conFreeness(ctx: SafetyContext): Finding[] {
  const findings: Finding[] = [];
  const { changedTypes, changedGlobals } = ctx.scope;
  if (changedTypes.size === 0 && changedGlobals.size === 0) return findings;
  for (const [point, sites] of ctx.sites)
    for (const site of sites)
      for (const frame of ctx.chains(site).frames) findings.push(...frameUses(ctx, point, site, frame));
  return findings;
}

/** The con-freeness findings of one frame at one site: one per changed type or global its future uses. */
function frameUses(ctx: SafetyContext, point: string, site: PointSite, frame: Frame): Finding[] {
  const { changedTypes, changedGlobals, replaced } = ctx.scope;
  const fn = ctx.from.functions[frame.function];
  if (!fn) return [];
  const findings: Finding[] = [];
  const seen = new Set<string>();
  // only a replaced function's frame resumes in other code; ask once, and only when it matters
  let rebuild: ReturnType<SafetyContext['rebuild']> | undefined;
  for (const s of stepsAround(fn, frame.at, 'future')) {
    const hit =
      (s.kind === 'type' && changedTypes.has(s.name)) ||
      ((s.kind === 'read' || s.kind === 'write') && changedGlobals.has(s.name));
    if (!hit || seen.has(s.name)) continue;
    seen.add(s.name);
    if (replaced.has(frame.function)) rebuild ??= ctx.rebuild(site, frame.function);
    const what = s.kind === 'type' ? `${s.name} concretely` : `global '${s.name}'`;
    const change = s.kind === 'type' ? 'its layout' : 'it';
    const location = `${frame.function} (${ctx.where(frame.function, s.line)})`;
    const uses = `(${ctx.where(frame.function, s.line)}), and the patch changes ${change}`;
    const at = `at '${point}' (${ctx.where(site.function, site.line)})`;
    if (rebuild?.ok)
      findings.push({
        rule: 'con-freeness',
        severity: 'info',
        location,
        message: `${at} the old code of ${frame.function}() would use ${what} ${uses}; it does not run again: its frame will be rebuilt in the new code`,
      });
    else
      findings.push({
        rule: 'con-freeness',
        severity: 'warning',
        location,
        updatePoints: [point],
        message:
          `${at} the old code of ${frame.function}() continues and uses ${what} ${uses}` +
          (rebuild ? `; its frame cannot be rebuilt in the new code: ${rebuild.why}` : ''),
      });
  }
  return findings;
}
