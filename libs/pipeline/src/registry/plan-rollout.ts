/**
 * Rollout planning, free of the database and the bus: which processes get an update command now,
 * which wait for a patch (and which patches to request on demand), which cannot be updated.
 */

/** A patch row with its verdict, as the planner needs it. */
export interface PlanPatch {
  requestId: string;
  fromBuildId: string;
  toBuildId: string;
  status: 'requested' | 'generated' | 'failed' | 'abandoned';
  patchId: string | null;
  error: string | null;
  /** The checker's verdict on the generated bundle; null while it is not in. */
  verdict: 'approved' | 'rejected' | null;
  requestedAt: string;
}

/** Where the patch from one build to the target build stands. */
export type PatchState =
  | { kind: 'approved'; patch: PlanPatch }
  | { kind: 'pending'; patch: PlanPatch }
  | { kind: 'failed'; patch: PlanPatch; reason: string }
  | { kind: 'missing' };

/**
 * The state of the patch `from -> to` among `patches`: an approved one wins; else one still on its
 * way (requested, or generated and waiting for its verdict); else the latest that failed or was
 * rejected (never asked again by a rollout: the same builds give the same patch); else none.
 */
export function patchState(patches: readonly PlanPatch[], from: string, to: string): PatchState {
  // An abandoned request (its rollout was aborted) counts as never made: a new one is requested.
  const pair = patches
    .filter((p) => p.fromBuildId === from && p.toBuildId === to && p.status !== 'abandoned')
    .sort((a, b) => a.requestedAt.localeCompare(b.requestedAt));
  const approved = pair.find((p) => p.status === 'generated' && p.verdict === 'approved');
  if (approved) return { kind: 'approved', patch: approved };
  const pending = pair.find((p) => p.status === 'requested' || (p.status === 'generated' && !p.verdict));
  if (pending) return { kind: 'pending', patch: pending };
  const last = pair[pair.length - 1];
  if (!last) return { kind: 'missing' };
  const reason =
    last.status === 'failed'
      ? `the patch from its build failed: ${(last.error ?? 'no error given').split('\n')[0]}`
      : `the patch from its build (${last.patchId}) was rejected by the checker`;
  return { kind: 'failed', patch: last, reason };
}

export interface PlanInput {
  program: string;
  targetVersion: string;
  targetBuildId: string;
  /** Each host's latest inventory. */
  hosts: readonly { host: string; processes: readonly { pid: number; program: string; buildId: string }[] }[];
  /** Patches of the program whose target is the target build, with their verdicts. */
  patches: readonly PlanPatch[];
  /** Build id -> version label of the program's built versions (the builds a patch can start from). */
  builtVersions: ReadonlyMap<string, string>;
}

export interface PlannedTarget {
  host: string;
  pid: number;
  fromBuildId: string;
  /** command: its approved patch is ready; wait: its patch is on its way (or to request); failed: none will come. */
  action: 'command' | 'wait' | 'failed';
  /** The approved patch (command) or the pending one (wait; null when it is to be requested). */
  patch: PlanPatch | null;
  reason: string | null;
}

export interface RolloutPlan {
  /** Every process of the program not on the target build, in host then pid order. */
  targets: PlannedTarget[];
  /** Builds that need a patch to the target requested now: one per distinct build, in first-seen order. */
  requests: { fromBuildId: string; fromVersion: string }[];
  /** One update command per host and approved patch. */
  commands: { host: string; patch: PlanPatch; pids: number[] }[];
}

export function planRollout(input: PlanInput): RolloutPlan {
  const targets: PlannedTarget[] = [];
  const requests: RolloutPlan['requests'] = [];
  const hosts = [...input.hosts].sort((a, b) => a.host.localeCompare(b.host));
  for (const h of hosts) {
    const procs = h.processes
      .filter((p) => p.program === input.program && p.buildId !== input.targetBuildId)
      .sort((a, b) => a.pid - b.pid);
    for (const p of procs) {
      const base = { host: h.host, pid: p.pid, fromBuildId: p.buildId };
      const s = patchState(input.patches, p.buildId, input.targetBuildId);
      if (s.kind === 'approved') targets.push({ ...base, action: 'command', patch: s.patch, reason: null });
      else if (s.kind === 'pending') targets.push({ ...base, action: 'wait', patch: s.patch, reason: null });
      else if (s.kind === 'failed')
        targets.push({ ...base, action: 'failed', patch: s.patch, reason: s.reason });
      else {
        const fromVersion = input.builtVersions.get(p.buildId);
        if (fromVersion === undefined) {
          targets.push({
            ...base,
            action: 'failed',
            patch: null,
            reason: `its build is not a built version of '${input.program}' in the registry, so no patch can be made from it`,
          });
          continue;
        }
        targets.push({ ...base, action: 'wait', patch: null, reason: null });
        if (!requests.some((r) => r.fromBuildId === p.buildId))
          requests.push({ fromBuildId: p.buildId, fromVersion });
      }
    }
  }
  return { targets, requests, commands: groupCommands(targets) };
}

/** One command per host and approved patch, for the targets whose action is `command`. */
export function groupCommands(
  targets: readonly Pick<PlannedTarget, 'host' | 'pid' | 'action' | 'patch'>[],
): RolloutPlan['commands'] {
  const out = new Map<string, RolloutPlan['commands'][number]>();
  for (const t of targets) {
    if (t.action !== 'command' || !t.patch?.patchId) continue;
    const k = `${t.host}\0${t.patch.patchId}`;
    const c = out.get(k) ?? { host: t.host, patch: t.patch, pids: [] };
    c.pids.push(t.pid);
    out.set(k, c);
  }
  return [...out.values()];
}

/** A note for the rollout about a target that gets no command. */
export function failedNote(
  t: { host: string; pid: number; fromBuildId: string; reason: string | null },
  targetVersion: string,
): string {
  return `pid ${t.pid} on ${t.host} runs build ${t.fromBuildId}: ${t.reason ?? 'no patch'} (to version '${targetVersion}')`;
}
