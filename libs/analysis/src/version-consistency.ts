import type { Finding } from '@dsu/patch-format';
import { describeAtom, Effect, type Origin } from './effects';
import type { SafetyContext } from './safety-context';
import { stepsAround, type Frame } from './stack-frames';
import { transactionRegions, type TxnRegion } from './transactions';

/**
 * Version consistency (Neamtiu, Hicks, Foster, Pratikakis, POPL 2008): a transaction must run
 * entirely in the old version or entirely in the new one. An update point inside a transaction
 * (in its function, or in a function it calls) is allowed only if the patch changes nothing the
 * transaction already used before the point (its prior effect) or nothing it will still use
 * after it (its future effect); calls count with everything they reach.
 */
export function versionConsistency(ctx: SafetyContext): Finding[] {
  const findings: Finding[] = [];
  const configured = ctx.transactions ?? [];
  for (const [point, sites] of ctx.sites) {
    for (const site of sites) {
      const reported = new Set<string>();
      const { chains, truncated } = ctx.chains(site);
      if (truncated) {
        findings.push({
          rule: 'version-consistency',
          severity: 'warning',
          location: `${site.function} (${ctx.where(site.function, site.line)})`,
          updatePoints: [point],
          message: `at '${point}' (${ctx.where(site.function, site.line)}) too many call paths lead to the point to judge the transactions around it; denied to be safe`,
        });
        continue;
      }
      for (const chain of chains) {
        const found = enclosingTransaction(ctx, chain, configured);
        if (!found) continue;
        const prior = effectOf(ctx, chain, found, 'prior').changedBy(ctx.scope);
        const future = effectOf(ctx, chain, found, 'future').changedBy(ctx.scope);
        if (prior.length === 0 || future.length === 0 || reported.has(found.region.label)) continue;
        reported.add(found.region.label);
        const txnFn = chain[found.index].function;
        const list = (xs: [string, Origin][]) =>
          xs.map(([a, o]) => `${describeAtom(a)} (${ctx.where(o.function, o.line)})`).join(', ');
        findings.push({
          rule: 'version-consistency',
          severity: 'warning',
          location: `${txnFn} (${ctx.where(txnFn, chain[found.index].line)})`,
          updatePoints: [point],
          message:
            `at '${point}' (${ctx.where(site.function, site.line)}) transaction '${found.region.label}' has already ` +
            `run ${list(prior)} in the old version and would run ${list(future)} in the new one; the patch changes ` +
            `both, so one transaction would mix the two versions (allowed where it has not begun, e.g. before it)`,
        });
      }
    }
  }
  return findings;
}

/** The innermost frame of the chain that is inside a transaction, and which. */
function enclosingTransaction(
  ctx: SafetyContext,
  chain: Frame[],
  configured: readonly string[],
): { index: number; region: TxnRegion } | undefined {
  for (let i = 0; i < chain.length; i++) {
    const fn = ctx.from.functions[chain[i].function];
    if (!fn) continue;
    const region = transactionRegions(fn, configured).find(
      (r) => chain[i].at > r.start && chain[i].at < r.end,
    );
    if (region) return { index: i, region };
  }
  return undefined;
}

/** What the transaction uses before (`prior`) or after (`future`) the point, along one chain. */
function effectOf(
  ctx: SafetyContext,
  chain: Frame[],
  txn: { index: number; region: TxnRegion },
  side: 'prior' | 'future',
): Effect {
  const effect = new Effect(ctx.graph);
  for (let i = 0; i <= txn.index; i++) {
    const frame = chain[i];
    const fn = ctx.from.functions[frame.function];
    if (!fn) continue;
    // the frames' own code runs on both sides of the point
    effect.addCode(frame.function, { function: frame.function, line: frame.line });
    const within = i === txn.index ? txn.region : undefined;
    for (const s of stepsAround(fn, frame.at, side, within)) effect.addStep(s, frame.function);
  }
  return effect;
}
