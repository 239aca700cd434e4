import type { ProgramModel } from '@dsu/c-frontend';
import type { Finding } from '@dsu/patch-format';

/**
 * A function the new version removes, but that code staying in the running process can still
 * call: an old function the patch does not replace still calls it directly, or its address was
 * taken (a stored pointer may be called later). The runtime keeps such functions callable; the
 * finding tells the reviewer that old code paths remain reachable.
 */
export function removedReferenced(from: ProgramModel, to: ProgramModel): Finding[] {
  const findings: Finding[] = [];
  const removed = Object.keys(from.functions).filter((k) => !(k in to.functions));
  for (const key of removed) {
    const callers = Object.values(from.functions)
      .filter(
        (f) => f.calls.includes(key) && f.key in to.functions && to.functions[f.key].bodyHash === f.bodyHash,
      )
      .map((f) => f.key)
      .sort();
    const pointer = from.functions[key].addressTaken;
    if (callers.length === 0 && !pointer) continue;
    const why = [
      callers.length ? `unchanged callers ${callers.join(', ')} still call it` : '',
      pointer ? 'its address was taken' : '',
    ]
      .filter(Boolean)
      .join(' and ');
    findings.push({
      rule: 'removed-referenced',
      severity: 'warning',
      location: key,
      updatePoints: [],
      message: `function '${key}' is removed by the new version, but ${why}; it stays callable in the running process`,
    });
  }
  return findings;
}
