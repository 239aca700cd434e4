import { functionsOnStacksAtPoints } from '@dsu/analysis';
import {
  frameMapEntries,
  mapFrame,
  whyNotRebuildable,
  type FrameFacts,
  type FrameMapEntry,
  type FrameOverride,
  type FunctionFrameMap,
} from '@dsu/frame-map';
import type { LoadedBuild } from './build-dir';
import type { PatchContents } from './plan-contents';

/**
 * Phase 2b of `dsu patch`: the stack-frame maps (libs/frame-map, ABI.md §11). A function the
 * patch replaces whose running version has capture code may be active when the patch is applied;
 * its frames are then rebuilt in the new code, so the patch says where each old frame resumes and
 * where each new local gets its value. A map that cannot be generated leaves the function's frames
 * unrebuilt (the patch lists no resume code for it, so the update waits while it is active) with a
 * note saying what to write in patch.yaml; one that patch.yaml asks for and that still cannot be
 * made is refused (a frame with no place to resume would abort the program).
 */
export interface FramesPlan {
  maps: FunctionFrameMap[];
  /** What the descriptor tells the runtime (sites and locals whose names changed). */
  entries: FrameMapEntry[];
  /** patch.yaml initializers: function key → local → C expression. */
  initializers: Map<string, Map<string, string>>;
  /** Findings for the manifest (not fatal). */
  notes: string[];
  /** Maps that cannot be made; not empty → the patch is refused. */
  refusals: string[];
  /** Replaced functions whose frames are not rebuilt (the patch lists no resume code for them). */
  unmapped: Set<string>;
}

/** Frame facts of a build by function key (none for builds made before frame mapping). */
function factsOf(build: LoadedBuild): Map<string, FrameFacts> {
  const out = new Map<string, FrameFacts>();
  for (const u of build.model.instrumentation.units)
    for (const f of u.plan.frames?.functions ?? []) out.set(f.key, f);
  return out;
}

/** Why the new version of a function got no capture code, from its build's facts. */
function refusedIn(build: LoadedBuild, key: string): string | undefined {
  for (const u of build.model.instrumentation.units) {
    const r = u.plan.frames?.refused.find((x) => x.key === key);
    if (r) return r.reason;
  }
  return undefined;
}

/**
 * The frame maps of a patch from `from` to `to`: one per replaced function that may be on a
 * stack at an update point and whose frames can be rebuilt; notes for those that cannot; refusals
 * only for what patch.yaml (`overrides`, by function name or key) asks and cannot be done.
 */
export function planFrameMaps(
  from: LoadedBuild,
  to: LoadedBuild,
  contents: PatchContents,
  overrides: Readonly<Record<string, FrameOverride>> = {},
): FramesPlan {
  const plan: FramesPlan = {
    maps: [],
    entries: [],
    initializers: new Map(),
    notes: [],
    refusals: [],
    unmapped: new Set(),
  };
  const oldFacts = factsOf(from);
  const newFacts = factsOf(to);
  // Types whose values a frame cannot carry as they are: changed layouts, and enums whose
  // enumerators changed (a state held in a local would mean another state).
  const changedTypes = new Set(contents.types.changed.map((c) => c.key));
  for (const [key, t] of Object.entries(to.model.types))
    if (t.kind === 'enum' && from.model.types[key] && from.model.types[key].layoutHash !== t.layoutHash) changedTypes.add(key);
  // Whole-program facts: dsu-cc gave capture code to every function of a unit that might reach
  // an update point; only these can, and only their calls of these are places a frame stops at.
  const stacked = functionsOnStacksAtPoints(from.model);
  const stackedNames = new Set([...stacked].map((k) => k.split('::').pop() as string));
  const byName = new Map([...oldFacts.keys()].map((k) => [k.split('::').pop() as string, k]));
  for (const name of Object.keys(overrides)) {
    if (!byName.has(name) && !oldFacts.has(name))
      plan.refusals.push(`patch.yaml frames: '${name}' is no function with capture code in the running version`);
  }
  for (const key of [...contents.changed].sort()) {
    const facts = oldFacts.get(key);
    if (!facts || !stacked.has(key)) continue; // never on a stack at an update point (or built before frame mapping)
    const old = { ...facts, sites: stopSites(facts.sites, stackedNames) };
    const unrebuildable = whyNotRebuildable(old);
    if (unrebuildable) {
      plan.notes.push(`frames: '${key}' cannot be rebuilt in the new code: ${unrebuildable}; the update waits until it is not active`);
      plan.unmapped.add(key);
      continue;
    }
    const next = newFacts.get(key);
    if (!next) {
      const why = refusedIn(to, key) ?? 'the new version has no capture code';
      plan.notes.push(`frames: '${key}' cannot be rebuilt in the new code (${why}); the update waits until it is not active`);
      plan.unmapped.add(key);
      continue;
    }
    const override = overrides[key] ?? overrides[key.split('::').pop() as string];
    const { map, problems } = mapFrame(old, next, override, { changedTypes });
    if (problems.length && !override) {
      // Not rebuilt: the update waits until the function is not active (as without frame
      // mapping); the note says what to write in patch.yaml to have its frames rebuilt.
      plan.notes.push(`frames: '${key}' cannot be rebuilt in the new code without help: ${problems.join('; ')}`);
      plan.unmapped.add(key);
      continue;
    }
    // The user wrote frames: for it in patch.yaml: a map that still cannot be made is refused.
    plan.refusals.push(...problems);
    plan.maps.push(map);
    plan.entries.push(...frameMapEntries(map));
    for (const l of map.locals) {
      if (l.from !== 'initializer' || l.expression === undefined) continue;
      const locals = plan.initializers.get(key) ?? new Map<string, string>();
      locals.set(l.local, l.expression);
      plan.initializers.set(key, locals);
    }
  }
  return plan;
}

/**
 * The sites of a running function a frame can really be stopped at: update points, waits (with
 * their re-issued form) and calls of functions that may be on a stack at a point (a call through
 * a pointer counts: its target is not known here).
 */
function stopSites(sites: readonly string[], stackedNames: ReadonlySet<string>): string[] {
  return sites.filter((s) => {
    const m = /^call:(.*)#\d+$/.exec(s);
    if (!m) return true;
    return !/^[A-Za-z_][A-Za-z0-9_]*$/.test(m[1]) || stackedNames.has(m[1]);
  });
}
