import type { ProgramModel } from '@dsu/c-frontend';
import type { PatchManifest, WhenConditions } from '@dsu/patch-format';
import type { FunctionFrameMap } from '@dsu/frame-map';
import { CallGraph } from './call-graph';
import {
  buildFrames,
  frameRebuild,
  manifestFrameMaps,
  type BuildFrames,
  type Rebuild,
} from './frame-rebuild';
import { patchScope, type PatchScope } from './patch-scope';
import { stackChains, type StackChains } from './stack-frames';
import { updatePointSites, type PointSite } from './update-sites';

/** The inputs of the safety analysis: the running version, the new one and the patch between them. */
export interface SafetyInput {
  from: ProgramModel;
  to: ProgramModel;
  manifest: PatchManifest;
  /** Functions whose whole body is a transaction (`dsu build --transaction FUNC`). */
  transactions?: string[];
  /** Default: the manifest's (patch.yaml `when:`). */
  when?: WhenConditions;
  /** Globals `patch.yaml` gives a value (or a state transformer sets): startup code need not run. */
  initializedGlobals?: string[];
}

/** The facts every rule shares, computed once per check. */
export interface SafetyContext extends SafetyInput {
  scope: PatchScope;
  graph: CallGraph;
  sites: Map<string, PointSite[]>;
  chains: (site: PointSite) => StackChains;
  /** `unit:line` of a step of a function of the running program. */
  where: (fn: string, line: number) => string;
  /** The running build's capture code, refusals and no-resume regions (stack-frame mapping). */
  frames: BuildFrames;
  /** The patch's frame maps by function key. */
  frameMaps: Map<string, FunctionFrameMap>;
  /** Whether the frames of replaced function `fn` at `site` can be rebuilt in the new code (frame-rebuild.ts). */
  rebuild: (site: PointSite, fn: string) => Rebuild;
}

/** The shared facts of one check; chains and rebuild verdicts are computed on first use and kept. */
export function safetyContext(input: SafetyInput): SafetyContext {
  const graph = new CallGraph(input.from);
  const cache = new Map<PointSite, StackChains>();
  const rebuilds = new Map<PointSite, Map<string, Rebuild>>();
  const ctx: SafetyContext = {
    ...input,
    transactions: input.transactions ?? input.from.transactions ?? [],
    when: input.when ?? input.manifest.when,
    scope: patchScope(input.from, input.manifest),
    graph,
    sites: updatePointSites(input.from),
    chains: (site) => {
      let c = cache.get(site);
      if (!c) cache.set(site, (c = stackChains(site, graph)));
      return c;
    },
    where: (fn, line) => `${input.from.functions[fn]?.unit ?? '?'}:${line}`,
    frames: buildFrames(input.from),
    frameMaps: manifestFrameMaps(input.manifest),
    rebuild: (site, fn) => {
      const bySite = rebuilds.get(site) ?? new Map<string, Rebuild>();
      rebuilds.set(site, bySite);
      let r = bySite.get(fn);
      if (!r)
        bySite.set(
          fn,
          (r = frameRebuild({ ...ctx, replaced: ctx.scope.replaced }, site, ctx.chains(site), fn)),
        );
      return r;
    },
  };
  return ctx;
}
