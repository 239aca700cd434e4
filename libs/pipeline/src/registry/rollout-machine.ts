// The rollout state machine around the pure planner (plan-rollout.ts): a rollout goes requested
// -> running -> completed | failed (aborted: abort-rollout.ts; overdue: request-deadlines.ts), each
// target waiting -> commanded -> reported (or failed). Every step runs in the caller's transaction;
// those that request patches or move waiting targets hold the program's lock (lockProgram).
import { type EntityManager, In } from 'typeorm';
import {
  type CloudEvent,
  type RolloutRequestedV1,
  Topics,
  type UpdateCommandV1,
  type UpdateResultV1,
  type UpdateResultsV2,
} from '@dsu/events';
import type { OutboxTx } from '@dsu/outbox';
import {
  InventoryEntity,
  PatchEntity,
  ProgramEntity,
  RolloutEntity,
  RolloutTargetEntity,
  type RolloutTargetState,
  UpdateResultEntity,
  type VerdictEntity,
  VersionEntity,
} from '@dsu/persistence';
import { now, type RegistryContext } from './context';
import { ensurePatchRequest, verdictsOf } from './patch-requests';
import { failedNote, groupCommands, patchState, type PlanPatch, planRollout } from './plan-rollout';

/** Rows per statement when targets and results are written in bulk (well inside SQLite's and PostgreSQL's bind limits). */
const RESULT_CHUNK = 200;

/**
 * Serializes the transactions that request patches or move rollouts of one program (PostgreSQL:
 * a row lock on the program; SQLite runs one transaction at a time anyway), so two of them
 * cannot both request the same patch, or both miss a verdict that commits in between.
 */
export async function lockProgram(em: EntityManager, program: string): Promise<void> {
  if (em.connection.options.type !== 'postgres') return;
  await em
    .createQueryBuilder(ProgramEntity, 'p')
    .setLock('pessimistic_write')
    .where('p.id = :program', { program })
    .getOne();
}

/**
 * Runs `fn` in a transaction holding the program's lock, then moves the program's waiting
 * rollout targets on: for changes made outside an event (the request deadlines).
 */
export async function underProgramLock(
  ctx: RegistryContext,
  program: string,
  fn?: (tx: OutboxTx) => Promise<void>,
): Promise<void> {
  await ctx.outbox.transact(async (tx) => {
    await lockProgram(tx.em, program);
    await fn?.(tx);
    await advanceWaiting(ctx, tx, program);
  });
}

/** Continues the rollouts a stopped gateway left waiting for patches whose verdicts came meanwhile. */
export async function resume(ctx: RegistryContext): Promise<void> {
  const running = await ctx.infra.ds.getRepository(RolloutEntity).findBy({ status: 'running' });
  for (const program of new Set(running.map((r) => r.program))) await underProgramLock(ctx, program);
}

/**
 * Plans a rollout from the latest inventory: every process of the program whose build is not
 * the target's is targeted. Processes whose build has an approved patch to the target get it at
 * once (one command per host and patch); for a build with no patch yet, a patch is requested
 * (once per distinct build) and its processes wait for the verdict; a patch that failed or was
 * rejected ends those processes' part with a note. The rest continues in `advanceWaiting`.
 */
export async function planRequestedRollout(
  ctx: RegistryContext,
  tx: OutboxTx,
  event: CloudEvent,
): Promise<void> {
  const req = event.data as RolloutRequestedV1;
  await lockProgram(tx.em, req.program);
  const rollout = await tx.em.findOneBy(RolloutEntity, { id: req.rolloutId });
  if (!rollout || rollout.status !== 'requested') return;
  const target = await tx.em.findOneBy(VersionEntity, { program: req.program, version: req.version });
  if (!target?.buildId) {
    rollout.notes = [`version '${req.version}' has no build`];
    rollout.status = 'failed';
    rollout.completedAt = now();
    await tx.em.save(rollout);
    return;
  }
  const built = await tx.em.findBy(VersionEntity, { program: req.program, status: 'built' });
  const plan = planRollout({
    program: req.program,
    targetVersion: req.version,
    targetBuildId: target.buildId,
    hosts: await tx.em.find(InventoryEntity, { order: { host: 'ASC' } }),
    patches: await planPatches(tx.em, req.program, [target.buildId]),
    builtVersions: new Map(built.map((v) => [v.buildId as string, v.version])),
  });
  const byBuild = new Map(built.map((v) => [v.buildId as string, v]));
  for (const r of plan.requests) {
    await ensurePatchRequest(tx, byBuild.get(r.fromBuildId) as VersionEntity, target, event);
  }
  const states: Record<(typeof plan.targets)[number]['action'], RolloutTargetState> = {
    command: 'commanded',
    wait: 'waiting',
    failed: 'failed',
  };
  const rows = plan.targets.map((t) => ({
    rolloutId: req.rolloutId,
    host: t.host,
    pid: t.pid,
    patchId: t.action === 'command' ? (t.patch?.patchId ?? null) : null,
    reported: false,
    state: states[t.action],
    fromBuildId: t.fromBuildId,
    toBuildId: target.buildId,
    reason: t.reason,
  }));
  // in bulk: a rollout to a thousand processes is a few statements, not a thousand
  for (let i = 0; i < rows.length; i += RESULT_CHUNK)
    await tx.em.insert(RolloutTargetEntity, rows.slice(i, i + RESULT_CHUNK));
  await emitCommands(ctx, tx, rollout, plan.commands, event);
  rollout.notes = plan.targets.filter((t) => t.action === 'failed').map((t) => failedNote(t, req.version));
  rollout.status = 'running';
  await tx.em.save(rollout);
  await finishIfDone(ctx, tx, rollout);
  ctx.log('info', 'rollout planned', {
    rolloutId: req.rolloutId,
    program: req.program,
    version: req.version,
    targets: plan.targets.length,
    commanded: plan.targets.filter((t) => t.action === 'command').length,
    waiting: plan.targets.filter((t) => t.action === 'wait').length,
    patchesRequested: plan.requests.length,
    notes: rollout.notes.length,
  });
}

/**
 * Moves the program's waiting rollout targets on once their patch is decided: an approved patch
 * sends the update command (once: the target leaves `waiting` in the same transaction), a failed
 * or rejected one ends the target with its reason. Runs after each verdict and patch failure,
 * and at start-up for rollouts left waiting by a restart.
 */
export async function advanceWaiting(
  ctx: RegistryContext,
  tx: OutboxTx,
  program: string,
  causedBy?: CloudEvent,
): Promise<void> {
  const rollouts = await tx.em.findBy(RolloutEntity, { program, status: 'running' });
  if (rollouts.length === 0) return;
  const waiting = await tx.em.find(RolloutTargetEntity, {
    where: { rolloutId: In(rollouts.map((r) => r.id)), state: 'waiting' },
    order: { host: 'ASC', pid: 'ASC' },
  });
  if (waiting.length === 0) return;
  const patches = await planPatches(tx.em, program, [...new Set(waiting.map((t) => t.toBuildId as string))]);
  for (const rollout of rollouts) {
    const mine = waiting.filter((t) => t.rolloutId === rollout.id);
    if (mine.length === 0) continue;
    const ready: { host: string; pid: number; action: 'command'; patch: PlanPatch }[] = [];
    for (const t of mine) {
      const s = patchState(patches, t.fromBuildId as string, t.toBuildId as string);
      if (s.kind === 'approved') {
        ready.push({ host: t.host, pid: t.pid, action: 'command', patch: s.patch });
        Object.assign(t, { state: 'commanded', patchId: s.patch.patchId });
      } else if (s.kind === 'failed') {
        Object.assign(t, { state: 'failed', reason: s.reason });
        rollout.notes = [
          ...rollout.notes,
          failedNote({ ...t, fromBuildId: t.fromBuildId as string }, rollout.version),
        ];
      } else if (s.kind === 'missing') {
        // Not expected (the plan requests the patch in its own transaction), but a target must
        // never wait for a patch nobody asked for.
        const built = (buildId: string | null) =>
          tx.em.findOneBy(VersionEntity, { program, buildId: buildId as string, status: 'built' });
        const from = await built(t.fromBuildId);
        const to = await built(t.toBuildId);
        if (from && to) {
          await ensurePatchRequest(tx, from, to, causedBy);
          continue;
        }
        Object.assign(t, { state: 'failed', reason: 'no patch from its build can be made' });
        rollout.notes = [
          ...rollout.notes,
          failedNote({ ...t, fromBuildId: t.fromBuildId as string }, rollout.version),
        ];
      } else continue;
      await tx.em.save(t);
    }
    await emitCommands(ctx, tx, rollout, groupCommands(ready), causedBy);
    await tx.em.save(rollout);
    await finishIfDone(ctx, tx, rollout);
  }
}

/**
 * Emits one signed `dsu.update.command` per host and approved patch, in the transaction that
 * marks the targets `commanded`, so a command is sent exactly when its targets stop waiting.
 */
async function emitCommands(
  ctx: RegistryContext,
  tx: OutboxTx,
  rollout: RolloutEntity,
  commands: { host: string; patch: PlanPatch; pids: number[] }[],
  causedBy?: CloudEvent,
): Promise<void> {
  if (commands.length === 0) return;
  const verdicts = await verdictsOf(
    tx.em,
    commands.map((c) => c.patch.patchId as string),
  );
  const bundles = new Map(
    (await tx.em.findBy(PatchEntity, { requestId: In(commands.map((c) => c.patch.requestId)) })).map((p) => [
      p.requestId,
      p,
    ]),
  );
  for (const { host, patch, pids } of commands) {
    const verdict = verdicts.get(patch.patchId as string) as VerdictEntity;
    const row = bundles.get(patch.requestId) as PatchEntity;
    const cmd: UpdateCommandV1 = {
      rolloutId: rollout.id,
      host,
      program: rollout.program,
      patchId: patch.patchId as string,
      bundleSha256: row.bundleSha256 as string,
      fromBuildId: patch.fromBuildId,
      toBuildId: patch.toBuildId,
      signature: verdict.signature as string,
      keyId: verdict.keyId as string,
      pids,
      timeoutMs: ctx.infra.config.applyTimeoutMs,
    };
    tx.emit(Topics.updateCommand, host, cmd, { causedBy, subject: rollout.program });
  }
}

/** Completes a running rollout once no target waits for a patch or a result. */
async function finishIfDone(ctx: RegistryContext, tx: OutboxTx, rollout: RolloutEntity): Promise<void> {
  if (rollout.status !== 'running') return;
  const open = await tx.em.existsBy(RolloutTargetEntity, {
    rolloutId: rollout.id,
    state: In(['waiting', 'commanded']),
  });
  if (open) return;
  const failed = await tx.em.existsBy(RolloutTargetEntity, { rolloutId: rollout.id, state: 'failed' });
  const results = await tx.em.findBy(UpdateResultEntity, { rolloutId: rollout.id });
  rollout.status =
    !failed && rollout.notes.length === 0 && results.every((x) => x.outcome === 'applied')
      ? 'completed'
      : 'failed';
  rollout.completedAt = now();
  await tx.em.save(rollout);
  ctx.log('info', 'rollout finished', {
    rolloutId: rollout.id,
    status: rollout.status,
    results: results.length,
  });
}

/**
 * Records a batch of processes' update results in the caller's transaction: each process once (a
 * redelivered result, or one already recorded from an earlier batch, is ignored), its target
 * marked reported, then each rollout the batch touches is evaluated once; the result of the last
 * open target finishes its rollout. `eventId` is the event that carried the batch.
 */
export async function onResults(
  ctx: RegistryContext,
  tx: OutboxTx,
  results: UpdateResultV1[],
  eventId: string,
): Promise<void> {
  const key = (r: { rolloutId: string; host: string; pid: number }) => `${r.rolloutId}\0${r.host}\0${r.pid}`;
  const fresh = new Map<string, UpdateResultV1>();
  for (const r of results) if (!fresh.has(key(r))) fresh.set(key(r), r);
  const groups = new Map<string, UpdateResultV1[]>(); // per rollout and host: one query each
  for (const r of fresh.values()) {
    const g = `${r.rolloutId}\0${r.host}`;
    groups.set(g, [...(groups.get(g) ?? []), r]);
  }
  const reportedAt = now();
  for (const batch of groups.values()) {
    const { rolloutId, host } = batch[0];
    for (let i = 0; i < batch.length; i += RESULT_CHUNK) {
      const chunk = batch.slice(i, i + RESULT_CHUNK);
      const pids = chunk.map((r) => r.pid);
      const known = await tx.em.find(UpdateResultEntity, {
        select: { pid: true },
        where: { rolloutId, host, pid: In(pids) },
      });
      const recorded = new Set(known.map((k) => k.pid));
      const rows = chunk.filter((r) => !recorded.has(r.pid));
      if (rows.length === 0) continue;
      await tx.em.insert(
        UpdateResultEntity,
        rows.map((r) => ({
          rolloutId,
          host,
          pid: r.pid,
          program: r.program,
          patchId: r.patchId,
          outcome: r.outcome,
          pauseUs: Math.round(r.pauseUs),
          updatePoint: r.updatePoint,
          reasons: r.reasons,
          buildId: r.buildId,
          eventId,
          reportedAt,
          instances: r.instances ?? null,
          transformUs: r.transformUs === undefined ? null : Math.round(r.transformUs),
        })),
      );
      await tx.em.update(
        RolloutTargetEntity,
        { rolloutId, host, pid: In(rows.map((r) => r.pid)) },
        { reported: true, state: 'reported' },
      );
    }
  }
  for (const rolloutId of new Set([...fresh.values()].map((r) => r.rolloutId))) {
    const rollout = await tx.em.findOneBy(RolloutEntity, { id: rolloutId });
    if (rollout) await finishIfDone(ctx, tx, rollout);
  }
}

/**
 * Records the results a `dsu.update.result` event carries: one process's (v1) or a batch of
 * one command's processes (v2), in the caller's transaction (see onResults).
 */
export async function onResult(ctx: RegistryContext, tx: OutboxTx, event: CloudEvent): Promise<void> {
  const results = event.type.endsWith('.v1')
    ? [event.data as UpdateResultV1]
    : (event.data as UpdateResultsV2).results;
  await onResults(ctx, tx, results, event.id);
}

/** The program's patches to the given builds, with their verdicts, as the planner sees them. */
async function planPatches(em: EntityManager, program: string, toBuildIds: string[]): Promise<PlanPatch[]> {
  const rows = await em.findBy(PatchEntity, { program, toBuildId: In(toBuildIds) });
  const verdicts = await verdictsOf(
    em,
    rows.map((p) => p.patchId).filter((id): id is string => id !== null),
  );
  return rows.map((p) => ({
    requestId: p.requestId,
    fromBuildId: p.fromBuildId,
    toBuildId: p.toBuildId,
    status: p.status,
    patchId: p.patchId,
    error: p.error,
    verdict: p.patchId ? (verdicts.get(p.patchId)?.verdict ?? null) : null,
    requestedAt: p.requestedAt,
  }));
}
