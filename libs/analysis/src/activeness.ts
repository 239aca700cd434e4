import type { Finding } from '@dsu/patch-format';
import { rebuiltClause } from './frame-rebuild';
import type { SafetyContext } from './safety-context';

/**
 * Activeness (static): at each update point, the functions that may be on a thread's stack (the
 * point's function and every caller up to the thread's entry, indirect calls resolved by pointer
 * type). A point where a function the patch replaces may be active is denied: its old code would
 * resume after the update — unless the runtime can rebuild that thread's frames in the new code
 * (stack-frame mapping, frame-rebuild.ts): then the finding is an 'info' saying how, and the
 * point stays allowed. A denial says why the frame cannot be rebuilt. The runtime's stack walk
 * stays as the dynamic guard.
 */
export function activeness(ctx: SafetyContext): Finding[] {
  const findings: Finding[] = [];
  for (const [point, sites] of ctx.sites) {
    for (const site of sites) {
      const chains = ctx.chains(site);
      for (const frame of chains.frames) {
        const why = ctx.scope.replaced.get(frame.function);
        if (why === undefined) continue;
        const chain = chains.chains.find((c) => c.some((f) => f.function === frame.function)) ?? [];
        const path = chain.map((f) => `${f.function}() (${ctx.where(f.function, f.line)})`).join(' <- ');
        const head =
          `at '${point}' (${ctx.where(site.function, site.line)}) ${frame.function}() may be on the stack ` +
          `(${path}) and the patch replaces it (${why})`;
        const location = `${frame.function} (${ctx.where(frame.function, frame.line)})`;
        const rebuild = ctx.rebuild(site, frame.function);
        findings.push(
          rebuild.ok
            ? {
                rule: 'activeness',
                severity: 'info',
                location,
                message: `${head}; ${rebuiltClause(rebuild.map)}`,
              }
            : {
                rule: 'activeness',
                severity: 'warning',
                location,
                updatePoints: [point],
                message: `${head}; its old code would resume after the update, and its frame cannot be rebuilt in the new code: ${rebuild.why}`,
              },
        );
      }
    }
  }
  return findings;
}
