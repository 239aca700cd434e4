/**
 * What a frame map becomes outside this library: the entries of the patch's descriptor
 * (`dsu_patch_frames`, ABI.md §11) and the line `dsu check` prints.
 */
import type { FunctionFrameMap, LocalMapping, SiteMapping } from './frame-map';

/** One `DSU_FRAME_MAP_SITE` / `DSU_FRAME_MAP_LOCAL` entry of the patch's descriptor. */
export interface FrameMapEntry {
  kind: 'site' | 'local';
  /** The function's key. */
  key: string;
  /** Old site / old local; '' for a local: the old value is not carried (its initializer runs). */
  from: string;
  /** New site / new local. */
  to: string;
}

/** The local entry one mapping needs, if any: only where the runtime's by-name default is wrong. */
function localEntry(l: LocalMapping): { from: string; to: string } | undefined {
  switch (l.from) {
    case 'old-local':
    case 'renamed':
    case 'conversion':
      return l.oldLocal !== l.local ? { from: l.oldLocal, to: l.local } : undefined;
    case 'initializer':
      // By name the runtime would load the old value; '' makes the load fail so the given initializer runs.
      return l.overridesOld ? { from: '', to: l.local } : undefined;
    case 'zero':
    case 'argument':
      return undefined;
  }
}

/**
 * The descriptor entries of a map. The runtime resumes at the same-named site and loads the
 * same-named local by default, so only the differences are entries: a site mapped to another
 * name, a local taken from another name, and an old local patch.yaml replaces with an initializer.
 */
export function frameMapEntries(map: FunctionFrameMap): FrameMapEntry[] {
  const entries: FrameMapEntry[] = map.sites
    .filter((s) => s.from !== s.to)
    .map((s) => ({ kind: 'site', key: map.key, from: s.from, to: s.to }));
  for (const l of map.locals) {
    const e = localEntry(l);
    if (e) entries.push({ kind: 'local', key: map.key, ...e });
  }
  return entries;
}

function describeLocal(l: LocalMapping): string {
  switch (l.from) {
    case 'old-local':
      return `${l.local} ← ${l.oldLocal}`;
    case 'renamed':
      return `${l.local} ← ${l.oldLocal} (renamed${l.note ? ', converted' : ''})`;
    case 'conversion':
      return `${l.local} ← ${l.oldLocal} (converted)`;
    case 'initializer':
      return `${l.local} ← ${l.expression ?? 'its initializer'}`;
    case 'zero':
      return `${l.local} ← zero`;
    case 'argument':
      return `${l.local} ← the call's argument`;
  }
}

/** A `:again` mapping that merely follows its wait's mapping says nothing new. */
function followsItsWait(s: SiteMapping, byFrom: ReadonlyMap<string, SiteMapping>): boolean {
  const base = s.from.endsWith(':again') ? byFrom.get(s.from.slice(0, -':again'.length)) : undefined;
  return base !== undefined && (s.to === base.to || s.to === `${base.to}:again`);
}

function describeSites(sites: readonly SiteMapping[]): string {
  const byFrom = new Map(sites.map((s) => [s.from, s]));
  const shown = sites.filter((s) => !followsItsWait(s, byFrom));
  const same = shown.filter((s) => s.how === 'same').length;
  const parts = shown
    .filter((s) => s.how !== 'same')
    .map((s) => `${s.from} → ${s.to} (${s.how === 'override' ? 'patch.yaml' : 'moved'})`);
  if (same > 0) parts.unshift(`${same} site${same === 1 ? '' : 's'} unchanged`);
  return parts.length > 0 ? parts.join(', ') : 'no sites';
}

/**
 * One line for `dsu check`: every new local and where it comes from, then the sites that resume
 * elsewhere (a wait's `:again` only when it does not follow its wait) and a count of the rest.
 */
export function describeFrameMap(map: FunctionFrameMap): string {
  const locals = map.locals.length > 0 ? map.locals.map(describeLocal).join(', ') : 'no locals';
  return `${map.key}: ${locals}; resume: ${describeSites(map.sites)}`;
}
