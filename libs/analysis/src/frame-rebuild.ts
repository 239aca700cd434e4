import type { ProgramModel } from '@dsu/c-frontend';
import { describeFrameMap, type FunctionFrameMap } from '@dsu/frame-map';
import type { PatchManifest } from '@dsu/patch-format';
import { prefixChange } from './frame-prefix';
import type { InstrumentedModel } from './instrumented-model';
import type { Frame, StackChains } from './stack-frames';
import type { PointSite } from './update-sites';

/**
 * Stack-frame mapping as the safety rules see it (libs/runtime/ABI.md §11): a thread stopped with
 * a replaced function on its stack is not refused when the runtime can rebuild its frames in the
 * new code. These are the static conditions the runtime's commit checks again at run time.
 */

/** The running build's stack-frame facts, from dsu-cc's unit plans (`plan.frames`). */
export interface BuildFrames {
  /** False for a build made before frame mapping or with DSU_NO_FRAMES=1: no frame can be rebuilt. */
  present: boolean;
  /** Functions with capture and resume code. */
  capture: Set<string>;
  /** Functions that could be on a stack at a point but got no frame code, with dsu-cc's reason. */
  refused: Map<string, string>;
  /** No-resume regions (calls wrapped in dsu__nomap) by `function:line`, with why. */
  noResume: Map<string, string>;
  /** Functions with a local whose address is kept beyond the calls it is passed to (the first one). */
  escapes: Map<string, { local: string; line: number }>;
}

const regionKey = (fn: string, line: number) => `${fn}:${line}`;

/** The frame facts of a running build; `present` is false when no unit carries any. */
export function buildFrames(model: ProgramModel): BuildFrames {
  const out: BuildFrames = {
    present: false,
    capture: new Set(),
    refused: new Map(),
    noResume: new Map(),
    escapes: new Map(),
  };
  for (const u of (model as InstrumentedModel).instrumentation?.units ?? []) {
    const frames = u.plan?.frames;
    if (!frames) continue;
    out.present = true;
    for (const f of frames.functions) {
      out.capture.add(f.key);
      // builds made before dsu-cc recorded address facts have no escapesAt: nothing is known to escape
      const held = f.locals?.find((l) => l.escapesAt !== undefined);
      if (held) out.escapes.set(f.key, { local: held.name, line: held.escapesAt as number });
    }
    for (const r of frames.refused) out.refused.set(r.key, r.reason);
    for (const n of frames.noResume) out.noResume.set(regionKey(n.key, n.line), n.reason);
  }
  return out;
}

/**
 * The frame maps a manifest carries, by function key. The manifest's form has the same fields as
 * libs/frame-map's FunctionFrameMap (patch-gen writes those maps as they are), only less narrowly typed.
 */
export function manifestFrameMaps(manifest: PatchManifest): Map<string, FunctionFrameMap> {
  return new Map((manifest.frames ?? []).map((m) => [m.key, m as FunctionFrameMap]));
}

/** One line per frame map of the manifest (describeFrameMap), in manifest order, for `dsu check`. */
export function frameMapLines(manifest: PatchManifest): string[] {
  return [...manifestFrameMaps(manifest).values()].map(describeFrameMap);
}

/** Whether the frames of a replaced function on a stack at a site can be rebuilt, and with which map. */
export type Rebuild = { ok: true; map: FunctionFrameMap } | { ok: false; why: string };

/** What frameRebuild reads of the safety context. */
export interface RebuildFacts {
  from: ProgramModel;
  to: ProgramModel;
  manifest: PatchManifest;
  frames: BuildFrames;
  frameMaps: Map<string, FunctionFrameMap>;
  replaced: Map<string, string>;
  where: (fn: string, line: number) => string;
}

/**
 * Whether every stack a thread may have at `site` with a frame of `fn` (a replaced function) on
 * it can be rebuilt in the new code: every frame down to the thread's entry has capture code, no
 * call of the chain (nor the wait the thread is in) is a no-resume region, and every replaced
 * function on the chain has a frame map in the patch. Past the chain limit every frame that can
 * reach the site counts (conservative). Otherwise `why` lists each failed condition, naming the
 * function or the line to fix.
 */
export function frameRebuild(facts: RebuildFacts, site: PointSite, chains: StackChains, fn: string): Rebuild {
  if (!facts.frames.present)
    return {
      ok: false,
      why: `the running build has no capture code (built before frame mapping or with DSU_NO_FRAMES=1); rebuild it with this dsu build`,
    };
  const through = chains.truncated
    ? [chains.frames]
    : chains.chains.filter((c) => c.some((f) => f.function === fn));
  const why = new Set<string>();
  const seen = new Set<string>();
  for (const f of through.flat()) {
    const id = `${f.function}@${f.at}`;
    if (seen.has(id)) continue;
    seen.add(id);
    for (const w of frameProblems(facts, site, f)) why.add(w);
  }
  const map = facts.frameMaps.get(fn);
  if (why.size > 0 || !map) return { ok: false, why: firstReasons([...why]) || missingMap(facts.manifest, fn) };
  return { ok: true, map };
}

/** Reasons listed in one finding at most: a big program's stacks fail hundreds (dnsmasq: a 1 GB verdict). */
export const REASONS_LISTED = 5;

/** The first REASONS_LISTED reasons, and how many more there are (fixing these shows the next ones). */
export function firstReasons(reasons: readonly string[]): string {
  const shown = reasons.slice(0, REASONS_LISTED).join('; ');
  const more = reasons.length - REASONS_LISTED;
  return more > 0 ? `${shown}; and ${more} more condition${more > 1 ? 's' : ''} on stacks through it` : shown;
}

/** Why one frame of a stack at `site` cannot be unwound and rebuilt (none: it can). */
function frameProblems(facts: RebuildFacts, site: PointSite, f: Frame): string[] {
  const out: string[] = [];
  if (!facts.frames.capture.has(f.function)) {
    const refused = facts.frames.refused.get(f.function);
    out.push(`${f.function}() has no capture code${refused ? ` (dsu-cc refused it: ${refused})` : ''}`);
  }
  const held = facts.frames.escapes.get(f.function);
  // a rebuilt frame gives its locals new storage: a pointer kept elsewhere would dangle
  if (held)
    out.push(
      `${f.function}() keeps the address of its local '${held.local}' beyond the call it is passed to ` +
        `(${facts.where(f.function, held.line)}) and a rebuilt frame would move it; make '${held.local}' static (or global)`,
    );
  if (facts.replaced.has(f.function) && !facts.frameMaps.has(f.function))
    out.push(missingMap(facts.manifest, f.function));
  // a replaced function's frame continues in the new code: only where both versions did the same before
  const oldFn = facts.from.functions[f.function];
  const mixed =
    facts.replaced.has(f.function) && oldFn
      ? prefixChange(oldFn, facts.to.functions[f.function], f.at, facts.replaced)
      : undefined;
  if (mixed) out.push(`at ${facts.where(f.function, f.line)}, ${mixed}`);
  const innermost = f.function === site.function && f.at === site.at;
  // the innermost frame is stopped at the point itself, not in a call, unless the point is a wrapped
  // blocking call: one nested in an expression is a no-resume region too
  const isWait = facts.from.functions[f.function]?.flow?.some((s) => s.at === f.at && s.kind === 'block');
  const region = innermost && !isWait ? undefined : facts.frames.noResume.get(regionKey(f.function, f.line));
  if (region !== undefined)
    out.push(
      `the call at ${facts.where(f.function, f.line)} in ${f.function}() is a no-resume region (${region}): a thread stopped inside it cannot be unwound`,
    );
  return out;
}

/** Why a replaced function has no frame map, with dsu patch's own note about it when it wrote one. */
function missingMap(manifest: PatchManifest, fn: string): string {
  const note = (manifest.notes ?? []).find((n) => n.startsWith(`frames: '${fn}'`));
  return note
    ? `the patch has no frame map for ${fn}() (${note})`
    : `the patch has no frame map for ${fn}() (generate the patch again with this dsu patch; the function needs capture code in both versions)`;
}

/** The end of an activeness finding whose frame is rebuilt: what the runtime does, by describeFrameMap. */
export function rebuiltClause(map: FunctionFrameMap): string {
  return `its frame will be rebuilt in the new code (${describeFrameMap(map)})`;
}
