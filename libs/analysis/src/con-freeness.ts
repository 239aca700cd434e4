import type { Finding } from '@dsu/patch-format';
import type { SafetyContext } from './safety-context';
import { stepsAround } from './stack-frames';

/**
 * Con-freeness (Stoyle et al.; Ginseng's updateability analysis): at each update point, the types
 * (and globals) that old code which may still run after it — the rest of the point's function and
 * of every caller after its call site, up to the thread's entry — uses concretely (member access,
 * sizeof, by-value copies). A point is denied when the patch changes one of them: that code would
 * read an instance in its new layout with the old offsets. Findings name the frame involved, so a
 * stack-frame mapping can lift them.
 */
export function conFreeness(ctx: SafetyContext): Finding[] {
  const findings: Finding[] = [];
  const { changedTypes, changedGlobals } = ctx.scope;
  if (changedTypes.size === 0 && changedGlobals.size === 0) return findings;
  for (const [point, sites] of ctx.sites) {
    for (const site of sites) {
      for (const frame of ctx.chains(site).frames) {
        const fn = ctx.from.functions[frame.function];
        if (!fn) continue;
        const seen = new Set<string>();
        for (const s of stepsAround(fn, frame.at, 'future')) {
          const hit =
            (s.kind === 'type' && changedTypes.has(s.name)) ||
            ((s.kind === 'read' || s.kind === 'write') && changedGlobals.has(s.name));
          if (!hit || seen.has(s.name)) continue;
          seen.add(s.name);
          const what = s.kind === 'type' ? `${s.name} concretely` : `global '${s.name}'`;
          const change = s.kind === 'type' ? 'its layout' : 'it';
          findings.push({
            rule: 'con-freeness',
            severity: 'warning',
            location: `${frame.function} (${ctx.where(frame.function, s.line)})`,
            updatePoints: [point],
            message:
              `at '${point}' (${ctx.where(site.function, site.line)}) the old code of ${frame.function}() ` +
              `continues and uses ${what} (${ctx.where(frame.function, s.line)}), and the patch changes ${change}`,
          });
        }
      }
    }
  }
  return findings;
}
