import type { FlowStep, FunctionModel } from '@dsu/c-frontend';

/**
 * Version consistency of a rebuilt frame. A frame of a replaced function that is rebuilt at a
 * site continues in the new code: what ran before the site (in the current iteration of its
 * loop, or since the function's entry) ran in the old code. That is the new version's behaviour
 * only when the old code did the same things before the site as the new code does before the
 * corresponding one — otherwise a request half done in the old code would be finished by the new
 * code (a function split in two, a state machine that gained a state before the point).
 */

/** The effects compared: everything a step does but its concrete type uses (layouts are con-freeness's). */
const EFFECT = new Set<FlowStep['kind']>(['call', 'icall', 'point', 'block', 'txn-begin', 'txn-end', 'read', 'write']);

/** The steps of `fn` before the step at `at`, back to the start of the outermost loop around it (or the entry). */
function prefixBefore(fn: FunctionModel, at: number): FlowStep[] {
  const loop = (fn.loops ?? []).find((l) => at >= l.start && at < l.end);
  const from = loop ? loop.start : -1;
  return (fn.flow ?? []).filter((s) => EFFECT.has(s.kind) && s.at >= from && s.at < at).sort((a, b) => a.at - b.at);
}

const same = (a: FlowStep[], b: FlowStep[]) =>
  a.length === b.length && a.every((s, i) => s.kind === b[i].kind && s.name === b[i].name);

const describe = (steps: FlowStep[]) =>
  steps.length ? steps.map((s) => `${s.kind} ${s.name}`).join(', ') : 'nothing';

/**
 * Why a frame of `oldFn` stopped at flow offset `at` cannot continue in `newFn` without mixing
 * versions, or undefined. The site's step (call, wait or point) is looked up in the new flow by
 * kind and name; the frame is consistent when some occurrence there has the same prefix of
 * effects, and no call in the prefix goes to a function the patch replaces (that call ran the
 * old code).
 */
export function prefixChange(
  oldFn: FunctionModel,
  newFn: FunctionModel | undefined,
  at: number,
  replaced: ReadonlyMap<string, string>,
): string | undefined {
  const stop = (oldFn.flow ?? []).find((s) => s.at === at && s.kind !== 'type');
  if (!stop || !newFn) return undefined; // nothing known to compare (the site is checked elsewhere)
  const before = prefixBefore(oldFn, at);
  const oldCall = before.find((s) => s.kind === 'call' && replaced.has(s.name));
  if (oldCall)
    return `before it, ${oldFn.name}() has called ${oldCall.name}(), which the patch replaces, in the old code (a request half done in the old code would be finished by the new code)`;
  const candidates = (newFn.flow ?? []).filter((s) => s.kind === stop.kind && s.name === stop.name);
  if (candidates.some((c) => same(before, prefixBefore(newFn, c.at)))) return undefined;
  const nearest = candidates.length ? describe(prefixBefore(newFn, candidates[0].at)) : undefined;
  return (
    `what ${oldFn.name}() does before ${stop.kind} ${stop.name} changed (old: ${describe(before)}; ` +
    (nearest !== undefined ? `new: ${nearest}` : 'the new code has no such step') +
    `): a request half done in the old code would be finished by the new code`
  );
}
