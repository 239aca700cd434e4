import type { ProgramModel } from '@dsu/c-frontend';
import type { Finding } from '@dsu/patch-format';
import { CallGraph } from './call-graph';
import type { SafetyContext } from './safety-context';

/** Functions of the new version that only startup code runs: main outside its loops, and what it calls there. */
function startupOnly(to: ProgramModel): { startup: Set<string>; later: Set<string> } {
  const graph = new CallGraph(to);
  const main = to.functions.main;
  const startup = new Set<string>();
  const later = new Set<string>();
  if (!main) return { startup, later };
  const inLoop = (at: number) => (main.loops ?? []).some((l) => at >= l.start && at < l.end);
  for (const s of main.flow ?? [])
    for (const c of graph.callees(s)) for (const g of graph.reach(c)) (inLoop(s.at) ? later : startup).add(g);
  // threads, callbacks and signal handlers run later too
  for (const f of Object.values(to.functions))
    if (f.addressTaken) for (const g of graph.reach(f.key)) later.add(g);
  for (const g of later) startup.delete(g);
  return { startup, later };
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
  const { startup } = startupOnly(ctx.to);
  const main = ctx.to.functions.main;
  const mainWritesOutsideLoops = (g: string) =>
    !!main?.flow?.some(
      (s) =>
        s.kind === 'write' &&
        s.name === g &&
        !(main.loops ?? []).some((l) => s.at >= l.start && s.at < l.end),
    );
  const findings: Finding[] = [];
  for (const g of added) {
    if (ctx.initializedGlobals?.some((n) => n === g || n === ctx.to.globals[g]?.name)) continue;
    const writers = Object.values(ctx.to.functions).filter((f) => f.globalsWritten.includes(g));
    if (writers.length === 0) continue;
    const onlyStartup = writers.every(
      (f) => startup.has(f.key) || (f.key === 'main' && mainWritesOutsideLoops(g)),
    );
    if (!onlyStartup) continue;
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
