// The projection of the pipeline's events into the gateway's database: each event handled once
// (the outbox's dedupe record, in the same transaction as its effects), heartbeats aside.
import { recordAudit } from '@dsu/access';
import {
  type BuildCompletedV1,
  type BuildFailedV1,
  type CloudEvent,
  type PatchFailedV1,
  type PatchGeneratedV1,
  type PatchVerdictV1,
  Topics,
} from '@dsu/events';
import type { OutboxTx } from '@dsu/outbox';
import { PatchEntity, VerdictEntity, VersionEntity } from '@dsu/persistence';
import { GATEWAY, now, type RegistryContext } from './context';
import { onHeartbeat } from './inventory';
import { ensurePatchRequest } from './patch-requests';
import { advanceWaiting, lockProgram, onResult, planRequestedRollout } from './rollout-machine';

/** The audit log's actor id of the checker's verdicts. */
const CHECKER_ACTOR = 'checker';

/**
 * Applies one event of the gateway's subscription. A patch failure or verdict also moves the
 * program's waiting rollout targets on, under the program lock, in the same transaction, so a
 * decided patch can never be missed by a target that waits for it.
 */
export async function project(ctx: RegistryContext, event: CloudEvent, topic: string): Promise<void> {
  if (topic === Topics.agentHeartbeat) return onHeartbeat(ctx, event);
  await ctx.outbox.once(GATEWAY, event, async (tx) => {
    switch (topic) {
      case Topics.buildCompleted:
        return onBuildCompleted(ctx, tx, event);
      case Topics.buildFailed:
        return onBuildFailed(tx, event.data as BuildFailedV1);
      case Topics.patchGenerated:
        return onPatchGenerated(tx, event.data as PatchGeneratedV1);
      case Topics.patchFailed:
        await lockProgram(tx.em, (event.data as PatchFailedV1).program);
        await onPatchFailed(tx, event.data as PatchFailedV1);
        return advanceWaiting(ctx, tx, (event.data as PatchFailedV1).program, event);
      case Topics.patchVerdict:
        await lockProgram(tx.em, (event.data as PatchVerdictV1).program);
        await onVerdict(tx, event.data as PatchVerdictV1);
        return advanceWaiting(ctx, tx, (event.data as PatchVerdictV1).program, event);
      case Topics.rolloutRequested:
        return planRequestedRollout(ctx, tx, event);
      case Topics.updateResult:
        return onResult(ctx, tx, event);
    }
  });
}

/** Marks the version built and requests the patch to it from the latest earlier version that built. */
async function onBuildCompleted(ctx: RegistryContext, tx: OutboxTx, event: CloudEvent): Promise<void> {
  const b = event.data as BuildCompletedV1;
  await lockProgram(tx.em, b.program);
  const v = await tx.em.findOneBy(VersionEntity, { program: b.program, version: b.version });
  if (!v)
    return ctx.log('warn', 'build of an unknown version ignored', {
      program: b.program,
      version: b.version,
    });
  Object.assign(v, {
    status: 'built',
    buildId: b.buildId,
    executable: b.executable,
    executableSha256: b.executableSha256,
    modelSha256: b.modelSha256,
    buildDirSha256: b.buildDirSha256,
    durationMs: b.durationMs,
    builtAt: now(),
  });
  await tx.em.save(v);
  // The patch starts from the latest earlier version that built.
  const earlier = await tx.em
    .createQueryBuilder(VersionEntity, 'v')
    .where('v.program = :p AND v.seq < :s AND v.status = :st', { p: b.program, s: v.seq, st: 'built' })
    .orderBy('v.seq', 'DESC')
    .getOne();
  if (earlier) await ensurePatchRequest(tx, earlier, v, event);
}

async function onBuildFailed(tx: OutboxTx, b: BuildFailedV1): Promise<void> {
  await tx.em.update(
    VersionEntity,
    { program: b.program, version: b.version },
    { status: 'failed', error: b.error, diagnostics: b.diagnostics, builtAt: now() },
  );
}

async function onPatchGenerated(tx: OutboxTx, p: PatchGeneratedV1): Promise<void> {
  await tx.em.update(
    PatchEntity,
    { requestId: p.requestId },
    {
      status: 'generated',
      patchId: p.patchId,
      bundleSha256: p.bundleSha256,
      functions: p.functions,
      types: p.types ?? null,
      globals: p.globals ?? null,
      generatedAt: now(),
    },
  );
}

async function onPatchFailed(tx: OutboxTx, p: PatchFailedV1): Promise<void> {
  await tx.em.update(
    PatchEntity,
    { requestId: p.requestId },
    { status: 'failed', error: p.error, reasons: p.reasons, generatedAt: now() },
  );
}

/** Stores the checker's verdict (the first one stands) and audits it as the checker's decision. */
async function onVerdict(tx: OutboxTx, v: PatchVerdictV1): Promise<void> {
  // A checker restarted mid-check may judge a bundle twice; the first verdict stands.
  if (await tx.em.existsBy(VerdictEntity, { patchId: v.patchId })) return;
  await tx.em.insert(VerdictEntity, {
    patchId: v.patchId,
    program: v.program,
    bundleSha256: v.bundleSha256,
    verdict: v.verdict,
    findings: v.findings,
    updatePoints: v.updatePoints ?? null,
    signature: v.signature,
    keyId: v.keyId,
    checkedAt: now(),
  });
  // The approval is automatic: the checker is its actor, identified by its signing key.
  const patch = await tx.em.findOneBy(PatchEntity, { patchId: v.patchId });
  await recordAudit(tx.em, {
    actor: { kind: 'service', id: CHECKER_ACTOR, name: `checker (key ${v.keyId ?? 'none'})` },
    action: 'patch.verdict',
    program: v.program,
    target: v.patchId,
    outcome: v.verdict,
    detail: {
      fromVersion: patch?.fromVersion ?? null,
      toVersion: patch?.toVersion ?? null,
      findings: v.findings.length,
      keyId: v.keyId,
    },
  });
}
