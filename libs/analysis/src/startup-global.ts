import type { FunctionModel, ProgramModel } from '@dsu/c-frontend';
import type { Finding } from '@dsu/patch-format';
import { CallGraph } from './call-graph';
import type { SafetyContext } from './safety-context';

/** The outermost loop of `fn` around flow offset `at`, if any. */
const inLoop = (fn: FunctionModel, at: number) => (fn.loops ?? []).some((l) => at >= l.start && at < l.end);

/** Functions of the new version that only startup code runs: what main calls outside its loops, and nothing else does. */
function startupOnly(to: ProgramModel): Set<string> {
  const graph = new CallGraph(to);
  const main = to.functions.main;
  const startup = new Set<string>();
  const later = new Set<string>();
  if (!main) return startup;
  for (const s of main.flow ?? [])
    for (const c of graph.callees(s))
      for (const g of graph.reach(c)) (inLoop(main, s.at) ? later : startup).add(g);
  // threads, callbacks and signal handlers run later too
  for (const f of Object.values(to.functions))
    if (f.addressTaken) for (const g of graph.reach(f.key)) later.add(g);
  for (const g of later) startup.delete(g);
  return startup;
}

/**
 * A global the new version adds and only its startup code assigns: the running process never ran
 * that code, so after the update the global keeps its static initializer (a NULL list, a zero
 * count) while the new code expects the value. An error unless patch.yaml's state transformer
 * sets it.
 */
export function startupGlobal(ctx: SafetyContext): Finding[] {
  const added = ctx.manifest.globals.filter((g) => g.change === 'added').map((g) => g.key);
  if (added.length === 0) return [];
  const startup = startupOnly(ctx.to);
  // main writes it in its loop, or a function that does not only run at startup writes it
  const writesLater = (f: FunctionModel, g: string) =>
    f.key === 'main'
      ? !!f.flow?.some((s) => s.kind === 'write' && s.name === g && inLoop(f, s.at))
      : !startup.has(f.key);
  const findings: Finding[] = [];
  for (const g of added) {
    if (ctx.initializedGlobals?.some((n) => n === g || n === ctx.to.globals[g]?.name)) continue;
    const writers = Object.values(ctx.to.functions).filter((f) => f.globalsWritten.includes(g));
    if (writers.length === 0 || writers.some((f) => writesLater(f, g))) continue;
    findings.push({
      rule: 'startup-global',
      severity: 'error',
      location: g,
      message:
        `the new version adds global '${g}' and only its startup code sets it (${writers.map((f) => `${f.key}()`).join(', ')}); ` +
        `the running process never runs that code again, so '${g}' would keep its static initializer. ` +
        `Set it in patch.yaml's stateTransformer (e.g. call the setup function there)`,
    });
  }
  return findings;
}
