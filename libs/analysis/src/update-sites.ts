import type { ProgramModel } from '@dsu/c-frontend';
import type { InstrumentedModel } from './instrumented-model';

/** One place where a thread can be when an update happens, under the name the runtime reports. */
export interface PointSite {
  /** Update point label, wrapper name (`poll`) or configured point (`serve:loop`). */
  point: string;
  function: string;
  /** Flow offset of the point in the function. */
  at: number;
  line: number;
  unit: string;
}

/**
 * Every update point of the running program, by name: `DSU_UPDATE_POINT` sites, wrapped blocking
 * calls (a thread inside one is quiescent; the runtime names the point after the call), and the
 * points dsu-cc placed from `--update-point F:entry|F:loop`. The runtime's allowed-points list is
 * by name, so a name is only as safe as its least safe site.
 */
export function updatePointSites(model: ProgramModel): Map<string, PointSite[]> {
  const sites = new Map<string, PointSite[]>();
  const add = (s: PointSite) => sites.set(s.point, [...(sites.get(s.point) ?? []), s]);
  for (const f of Object.values(model.functions))
    for (const s of f.flow ?? [])
      if (s.kind === 'point' || s.kind === 'block')
        add({ point: s.name, function: f.key, at: s.at, line: s.line, unit: f.unit });
  for (const u of (model as InstrumentedModel).instrumentation?.units ?? [])
    for (const name of u.plan?.updatePoints ?? []) {
      const [fn, where] = name.split(':');
      const f = Object.values(model.functions).find((x) => x.name === fn && x.unit === u.path);
      if (!f) continue;
      // F:loop sits at the head of the body of the largest outermost loop (as dsu-cc places it)
      const loop = (f.loops ?? []).reduce<{ start: number; end: number } | undefined>(
        (best, l) => (!best || l.end - l.start > best.end - best.start ? l : best),
        undefined,
      );
      const at = where === 'loop' && loop ? loop.start + 1 : 0;
      const line = f.flow?.find((s) => s.at >= at)?.line ?? f.flow?.[0]?.line ?? 0;
      add({ point: name, function: f.key, at, line, unit: f.unit });
    }
  return sites;
}
