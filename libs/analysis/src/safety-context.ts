import type { ProgramModel } from '@dsu/c-frontend';
import type { PatchManifest, WhenConditions } from '@dsu/patch-format';
import { CallGraph } from './call-graph';
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
}

export function safetyContext(input: SafetyInput): SafetyContext {
  const graph = new CallGraph(input.from);
  const cache = new Map<PointSite, StackChains>();
  return {
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
  };
}
