import type { ProgramModel } from '@dsu/c-frontend';
import type { PatchManifest } from '@dsu/patch-format';
import { CallGraph } from './call-graph';
import { patchScope, type PatchScope } from './patch-scope';
import { stackChains, type StackChains } from './stack-frames';
import { updatePointSites, type PointSite } from './update-sites';

/** What `patch.yaml` may say about when the update happens (DESIGN.md §5, when-conditions). */
export interface WhenConditions {
  /** Only at these update points. */
  points?: string[];
  /** Only when none of these functions is active. */
  inactive?: string[];
  /** A C expression compiled into the patch, evaluated at the update point (enforced by the runtime). */
  predicate?: string;
  /** Give up after this long (enforced by the runtime). */
  deadlineMs?: number;
}

/** The inputs of the safety analysis: the running version, the new one and the patch between them. */
export interface SafetyInput {
  from: ProgramModel;
  to: ProgramModel;
  manifest: PatchManifest;
  /** Functions whose whole body is a transaction (`dsu build --transaction FUNC`). */
  transactions?: string[];
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
