import { In, Not } from 'typeorm';
import { type Actor, recordAudit } from '@dsu/access';
import type { OutboxTx } from '@dsu/outbox';
import { PatchEntity, RolloutEntity, RolloutTargetEntity } from '@dsu/persistence';
import { RegistryError } from './errors';

/** What an abort reports back to the caller (the gateway answers with it). */
export interface AbortedRollout {
  rolloutId: string;
  status: 'aborted';
  /** Targets that were still waiting for a patch or a result, now `aborted`. */
  abortedTargets: number;
  /** On-demand patch requests nobody waits for any more, now `abandoned` (a retry asks anew). */
  abandonedPatches: string[];
}

/**
 * Ends a requested or running rollout as `aborted` with the reason, in the caller's transaction
 * (which holds the program lock): its open targets become `aborted` (a result that still comes
 * is recorded, but moves nothing), and the patch requests only its waiting targets waited for
 * and that never produced a patch are `abandoned`, so a retry requests them again instead of
 * waiting on a request that may never be answered. Commands already sent are not recalled: a
 * process may still apply one (its result is kept), which is why a retry re-plans from the
 * inventory rather than from this rollout's targets.
 */
export async function abortRollout(
  tx: OutboxTx,
  rolloutId: string,
  reason: string,
  by: Actor | undefined,
  at: string,
): Promise<AbortedRollout> {
  const rollout = await tx.em.findOneBy(RolloutEntity, { id: rolloutId });
  if (!rollout) throw new RegistryError(404, `rollout '${rolloutId}' is not known`);
  if (rollout.status !== 'requested' && rollout.status !== 'running')
    throw new RegistryError(
      409,
      `rollout '${rolloutId}' is already ${rollout.status}; only a requested or running rollout can be aborted (start it over with 'dsu rollout retry ${rolloutId}')`,
    );
  const open = await tx.em.findBy(RolloutTargetEntity, { rolloutId, state: In(['waiting', 'commanded']) });
  const abandoned = await abandonPatchRequests(
    tx,
    rollout,
    open.filter((t) => t.state === 'waiting'),
  );
  const note = `aborted by ${by ? `${by.name} (${by.id})` : 'the gateway'}: ${reason}`;
  for (const t of open) {
    const why =
      t.state === 'waiting'
        ? `aborted while waiting for the patch from build ${t.fromBuildId}`
        : 'aborted while its update command was out (a result that still comes is recorded)';
    await tx.em.update(
      RolloutTargetEntity,
      { rolloutId, host: t.host, pid: t.pid },
      { state: 'aborted', reason: why },
    );
  }
  rollout.status = 'aborted';
  rollout.notes = [...rollout.notes, note];
  rollout.completedAt = at;
  await tx.em.save(rollout);
  if (by)
    await recordAudit(tx.em, {
      actor: by,
      action: 'rollout.abort',
      program: rollout.program,
      target: rollout.version,
      outcome: 'aborted',
      detail: { rolloutId, reason, abortedTargets: open.length, abandonedPatches: abandoned },
    });
  return { rolloutId, status: 'aborted', abortedTargets: open.length, abandonedPatches: abandoned };
}

/**
 * The still-`requested` patch requests the waiting targets depend on and no other running
 * rollout waits for: set `abandoned` (the patch's own version view and any later result still
 * work: a `dsu.patch.generated` for it turns it `generated` again). Returns their request ids.
 */
async function abandonPatchRequests(
  tx: OutboxTx,
  rollout: RolloutEntity,
  waiting: RolloutTargetEntity[],
): Promise<string[]> {
  if (waiting.length === 0) return [];
  const pairs = new Set(waiting.map((t) => `${t.fromBuildId}\0${t.toBuildId}`));
  const others = await tx.em.findBy(RolloutEntity, {
    program: rollout.program,
    status: 'running',
    id: Not(rollout.id),
  });
  const stillWanted = new Set(
    (
      await tx.em.findBy(RolloutTargetEntity, {
        rolloutId: In(others.map((o) => o.id)),
        state: 'waiting',
      })
    ).map((t) => `${t.fromBuildId}\0${t.toBuildId}`),
  );
  const requested = await tx.em.findBy(PatchEntity, { program: rollout.program, status: 'requested' });
  const abandon = requested.filter(
    (p) =>
      pairs.has(`${p.fromBuildId}\0${p.toBuildId}`) && !stillWanted.has(`${p.fromBuildId}\0${p.toBuildId}`),
  );
  for (const p of abandon)
    await tx.em.update(
      PatchEntity,
      { requestId: p.requestId, status: 'requested' },
      { status: 'abandoned', error: `abandoned: rollout ${rollout.id} was aborted while waiting for it` },
    );
  return abandon.map((p) => p.requestId);
}
