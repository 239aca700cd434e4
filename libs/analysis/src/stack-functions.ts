import type { ProgramModel } from '@dsu/c-frontend';
import { CallGraph } from './call-graph';
import { updatePointSites } from './update-sites';

/**
 * The functions that may be on a thread's stack when it stops for an update: every function with
 * an update point or a wrapped blocking call, and their callers, transitively (indirect calls
 * resolved by pointer type, as the call graph does). Stack-frame mapping needs maps for these
 * only, and only their calls of these are places a frame can stop at.
 */
export function functionsOnStacksAtPoints(model: ProgramModel): Set<string> {
  const graph = new CallGraph(model);
  const out = new Set<string>();
  const todo: string[] = [];
  const add = (fn: string) => {
    if (out.has(fn)) return;
    out.add(fn);
    todo.push(fn);
  };
  for (const sites of updatePointSites(model).values()) for (const s of sites) add(s.function);
  while (todo.length) for (const e of graph.callersOf(todo.pop() as string)) add(e.caller);
  return out;
}
