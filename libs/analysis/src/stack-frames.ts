import type { FlowStep, FunctionModel } from '@dsu/c-frontend';
import type { CallGraph } from './call-graph';
import type { PointSite } from './update-sites';

/** A frame that may be on a thread's stack at an update point: the function and where it resumes. */
export interface Frame {
  function: string;
  /** Flow offset where the frame is: the update point in the innermost frame, else the call site. */
  at: number;
  line: number;
}

/** Stacks a thread may have at a site, innermost frame first, up to a function nothing calls. */
export interface StackChains {
  chains: Frame[][];
  /**
   * More chains than the limit: `frames` then also holds every call site of every function that
   * can reach the site, so the frame rules stay conservative; version consistency denies the point.
   */
  truncated: boolean;
  /** Every distinct frame that may be on a stack at the site. */
  frames: Frame[];
}

/** Every call chain from a thread's entry (a function no program code calls) down to `site`. */
export function stackChains(site: PointSite, graph: CallGraph, limit = 512): StackChains {
  const chains: Frame[][] = [];
  let truncated = false;
  const walk = (chain: Frame[]) => {
    if (chains.length >= limit) {
      truncated = true;
      return;
    }
    const top = chain[chain.length - 1];
    const callers = graph.callersOf(top.function);
    if (callers.length === 0) return void chains.push(chain);
    for (const e of callers) {
      const frame = { function: e.caller, at: e.at, line: e.line };
      // recursion: the frame is recorded, the cycle not followed again
      if (chain.some((f) => f.function === e.caller)) chains.push([...chain, frame]);
      else walk([...chain, frame]);
    }
  };
  const first = { function: site.function, at: site.at, line: site.line };
  walk([first]);
  const frames = new Map<string, Frame>();
  const add = (f: Frame) => frames.set(`${f.function}@${f.at}`, f);
  for (const c of chains) c.forEach(add);
  if (truncated) {
    add(first);
    const todo = [site.function];
    const reached = new Set(todo);
    while (todo.length)
      for (const e of graph.callersOf(todo.pop() as string)) {
        add({ function: e.caller, at: e.at, line: e.line });
        if (reached.has(e.caller)) continue;
        reached.add(e.caller);
        todo.push(e.caller);
      }
  }
  return { chains, truncated, frames: [...frames.values()] };
}

const loopAt = (fn: FunctionModel, at: number) => (fn.loops ?? []).find((l) => at >= l.start && at < l.end);

/**
 * The steps of `fn` that may run after the frame resumes at `at` (its continuation: later in the
 * body, or anywhere in the outermost loop around `at`, which runs again), or that ran before it
 * (`prior`). `within` limits both to a region of the body (a transaction), loops included only
 * when they lie inside it.
 */
export function stepsAround(
  fn: FunctionModel,
  at: number,
  side: 'prior' | 'future',
  within?: { start: number; end: number },
): FlowStep[] {
  const inside = (x: number) => !within || (x >= within.start && x <= within.end);
  const loop = loopAt(fn, at);
  const loopCounts = loop && (!within || (loop.start >= within.start && loop.end <= within.end));
  return (fn.flow ?? []).filter(
    (s) =>
      s.at !== at &&
      inside(s.at) &&
      ((side === 'future' ? s.at > at : s.at < at) || (loopCounts && s.at >= loop.start && s.at < loop.end)),
  );
}
