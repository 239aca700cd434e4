import { type EntityManager, In } from 'typeorm';
import { type CloudEvent, type PatchRequestedV1, Topics } from '@dsu/events';
import { newId, type OutboxTx } from '@dsu/outbox';
import { PatchEntity, VerdictEntity, type VersionEntity } from '@dsu/persistence';
import { now } from './context';

/**
 * The verdicts of the given patches by patch id, read through `em` (the caller's transaction, so
 * it sees the verdicts that transaction sees). No query when there is nothing to look up.
 */
export async function verdictsOf(em: EntityManager, patchIds: string[]): Promise<Map<string, VerdictEntity>> {
  if (patchIds.length === 0) return new Map();
  return new Map((await em.findBy(VerdictEntity, { patchId: In(patchIds) })).map((v) => [v.patchId, v]));
}

/**
 * The patch request for a pair of builds: an existing one (requested or generated; failed too,
 * unless `retryFailed`) is reused, so no pair is generated twice; otherwise a new one is emitted.
 * Callers hold the program lock, so concurrent transactions cannot both emit one.
 */
export async function ensurePatchRequest(
  tx: OutboxTx,
  from: VersionEntity,
  to: VersionEntity,
  causedBy?: CloudEvent,
  retryFailed = false,
): Promise<{ requestId: string; created: boolean }> {
  const existing = await tx.em.find(PatchEntity, {
    where: { program: to.program, fromBuildId: from.buildId as string, toBuildId: to.buildId as string },
    order: { requestedAt: 'ASC' },
  });
  const verdicts = await verdictsOf(
    tx.em,
    existing.map((p) => p.patchId).filter((id): id is string => id !== null),
  );
  const live = existing.find(
    (p) =>
      p.status === 'requested' ||
      (p.status === 'generated' && verdicts.get(p.patchId as string)?.verdict !== 'rejected'),
  );
  // An abandoned request (its rollout was aborted) is never reused: it may never be answered.
  const decided = existing.filter((p) => p.status !== 'abandoned');
  const reuse = live ?? (retryFailed ? undefined : decided[decided.length - 1]);
  if (reuse) return { requestId: reuse.requestId, created: false };
  return { requestId: await emitPatchRequest(tx, from, to, causedBy), created: true };
}

/** Records a new `requested` patch row and emits its `dsu.patch.requested`, in the caller's transaction. */
async function emitPatchRequest(
  tx: OutboxTx,
  from: VersionEntity,
  to: VersionEntity,
  causedBy?: CloudEvent,
): Promise<string> {
  const requestId = newId();
  const ref = (v: VersionEntity) => ({
    version: v.version,
    buildId: v.buildId as string,
    buildDirSha256: v.buildDirSha256 as string,
  });
  await tx.em.insert(PatchEntity, {
    requestId,
    program: to.program,
    fromVersion: from.version,
    toVersion: to.version,
    fromBuildId: from.buildId as string,
    toBuildId: to.buildId as string,
    status: 'requested',
    patchId: null,
    bundleSha256: null,
    functions: null,
    error: null,
    reasons: null,
    requestedAt: now(),
    generatedAt: null,
  });
  tx.emit(
    Topics.patchRequested,
    to.program,
    { program: to.program, requestId, from: ref(from), to: ref(to) } satisfies PatchRequestedV1,
    { causedBy },
  );
  return requestId;
}
