// The registry's write side (the gateway's POSTs): each command validates, writes and emits its
// events in one outbox transaction, and audits the user who gave it (internal callers pass no
// actor and are not audited).
import type { Readable } from 'node:stream';
import { type EntityManager, IsNull, Not } from 'typeorm';
import { type Actor, recordAudit } from '@dsu/access';
import { type RolloutRequestedV1, Topics } from '@dsu/events';
import { newId } from '@dsu/outbox';
import { ProgramEntity, RolloutEntity, VersionEntity } from '@dsu/persistence';
import { parseUpdatePointSpec } from '@dsu/instrument';
import { currentTraceparent, inSpan } from '@dsu/tracing';
import { ArchiveRefusedError } from '../shared/archive-limits';
import { receiveArchive } from '../shared/receive-archive';
import { abortRollout as abortInTx } from './abort-rollout';
import { now, type RegistryContext } from './context';
import { RegistryError } from './errors';
import { ensurePatchRequest } from './patch-requests';
import { getVersion } from './queries';
import { advanceWaiting, lockProgram } from './rollout-machine';
import type {
  AbortedRollout,
  DeletedVersionView,
  PatchRequestView,
  ProgramRegistrationView,
  RolloutRequestView,
  VersionView,
} from './views';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export interface SubmitVersion {
  program: string;
  version: string;
  /** The gzip tar of the source directory: a buffer, or the request body as it streams in. */
  source: Buffer | Readable;
  bin?: string | null;
  updatePoints?: string[];
  /** Who submits (the audit log's actor); omitted by internal callers, which are not audited. */
  by?: Actor;
}

/** Registers a program id (idempotent: registering it again answers the existing one, `created: false`). */
export async function registerProgram(
  ctx: RegistryContext,
  id: string,
  description = '',
  by?: Actor,
): Promise<ProgramRegistrationView> {
  if (!NAME.test(id))
    throw new RegistryError(400, `program id '${id}' must be 1-128 letters, digits, '.', '_' or '-'`);
  return ctx.outbox.transact(async ({ em }) => {
    const existing = await em.findOneBy(ProgramEntity, { id });
    if (existing) return { id, description: existing.description, created: false };
    await em.insert(ProgramEntity, { id, description });
    if (by) await recordAudit(em, { actor: by, action: 'program.register', program: id, outcome: 'created' });
    return { id, description, created: true };
  });
}

/**
 * Stores the source tarball and asks the compiler to build it, in one transaction with the
 * version row. The cheap checks and the archive's own (limits, tree rules, while it streams in)
 * come first, so a bad request is refused at submit time rather than as a failed build.
 */
export async function submitVersion(ctx: RegistryContext, s: SubmitVersion): Promise<VersionView> {
  if (!NAME.test(s.version))
    throw new RegistryError(400, `version '${s.version}' must be 1-128 letters, digits, '.', '_' or '-'`);
  if (Buffer.isBuffer(s.source) && s.source.length === 0)
    throw new RegistryError(
      400,
      'the source tarball is empty; send the gzip tar of the source directory as the request body',
    );
  if (Buffer.isBuffer(s.source) && (s.source[0] !== 0x1f || s.source[1] !== 0x8b))
    throw new RegistryError(400, 'the request body is not a gzip tarball (content-type application/gzip)');
  for (const p of s.updatePoints ?? []) {
    try {
      parseUpdatePointSpec(p);
    } catch (err) {
      throw new RegistryError(400, (err as Error).message, 'invalid-update-point');
    }
  }
  if (!(await ctx.infra.ds.getRepository(ProgramEntity).existsBy({ id: s.program }))) {
    throw new RegistryError(
      404,
      `program '${s.program}' is not registered; POST /programs {"id":"${s.program}"} first`,
      'program-not-found',
    );
  }
  // Checked while it streams in (limits, tree rules): a bad tree is refused here, at submit time.
  const { archiveLimits, uploadMaxBytes } = ctx.infra.config;
  const src = await receiveArchive(s.source, ctx.infra.store, archiveLimits, uploadMaxBytes).catch((err) => {
    throw err instanceof ArchiveRefusedError ? new RegistryError(err.status, err.message) : err;
  });
  // One trace per submitted version: its build, patch and check (and later its rollouts) join it.
  const submitted = () =>
    ctx.outbox.transact(async (tx) => {
      await freeVersionLabel(tx.em, s.program, s.version);
      const last = await tx.em.findOne(VersionEntity, {
        where: { program: s.program },
        order: { seq: 'DESC' },
      });
      // The latest built version's model: the new build keeps its struct capacities.
      const lineage = await tx.em.findOne(VersionEntity, {
        where: { program: s.program, modelSha256: Not(IsNull()) },
        order: { seq: 'DESC' },
      });
      await tx.em.insert(VersionEntity, {
        program: s.program,
        version: s.version,
        status: 'building',
        sourceSha256: src.sha256,
        bin: s.bin ?? null,
        updatePoints: s.updatePoints ?? [],
        buildId: null,
        executable: null,
        executableSha256: null,
        modelSha256: null,
        buildDirSha256: null,
        error: null,
        diagnostics: null,
        durationMs: null,
        seq: (last?.seq ?? 0) + 1,
        requestedAt: now(),
        builtAt: null,
        traceParent: currentTraceparent(),
      });
      tx.emit(Topics.buildRequested, s.program, {
        program: s.program,
        version: s.version,
        sourceSha256: src.sha256,
        bin: s.bin ?? null,
        updatePoints: s.updatePoints ?? [],
        layoutFromModelSha256: lineage?.modelSha256 ?? null,
      });
      if (s.by)
        await recordAudit(tx.em, {
          actor: s.by,
          action: 'version.submit',
          program: s.program,
          target: s.version,
          outcome: 'accepted',
          detail: { sourceSha256: src.sha256, bytes: src.size, bin: s.bin ?? null },
        });
    });
  await inSpan('dsu submit', { 'dsu.program': s.program, 'dsu.version': s.version }, submitted);
  return getVersion(ctx, s.program, s.version);
}

/**
 * Refuses a label already taken (409 version-exists), except by a version the compiler failed to
 * build: that one never had a build, so no patch, rollout or process refers to it, and submitting
 * the fixed source under the same label replaces it (the audit log keeps both submissions). A
 * version ended by the build deadline keeps its label: its build may still come in late.
 */
async function freeVersionLabel(em: EntityManager, program: string, version: string): Promise<void> {
  const old = await em.findOneBy(VersionEntity, { program, version });
  if (!old) return;
  const compilerFailed =
    old.status === 'failed' && old.buildId === null && !/^no build result within/.test(old.error ?? '');
  if (compilerFailed) {
    await em.delete(VersionEntity, { program, version });
    return;
  }
  throw new RegistryError(
    409,
    `version '${version}' of '${program}' was already submitted (${old.status}); submit the change under a new version label`,
    'version-exists',
  );
}

/**
 * Removes a version whose build failed (its label is free again; the audit log keeps its
 * submission). Only a failed one: it never had a build, so no patch, rollout or process refers to
 * it (a late build result for it is ignored as one of an unknown version). 409 otherwise.
 */
export async function deleteVersion(
  ctx: RegistryContext,
  program: string,
  version: string,
  by?: Actor,
): Promise<DeletedVersionView> {
  return ctx.outbox.transact(async ({ em }) => {
    await knownProgram(em, program);
    const v = await em.findOneBy(VersionEntity, { program, version });
    if (!v)
      throw new RegistryError(404, `version '${version}' of '${program}' is not known`, 'version-not-found');
    if (v.status !== 'failed')
      throw new RegistryError(
        409,
        `version '${version}' of '${program}' is ${v.status}; only a version whose build failed can be deleted`,
        'version-not-failed',
      );
    await em.delete(VersionEntity, { program, version });
    if (by)
      await recordAudit(em, {
        actor: by,
        action: 'version.delete',
        program,
        target: version,
        outcome: 'deleted',
      });
    return { program, version, deleted: true };
  });
}

/** 404 program-not-found unless `program` is registered: said before any version is blamed. */
async function knownProgram(em: EntityManager, program: string): Promise<void> {
  if (!(await em.existsBy(ProgramEntity, { id: program })))
    throw new RegistryError(
      404,
      `program '${program}' is not registered; submit a version of it first ('dsu submit <src-dir> --program ${program} --version <label>')`,
      'program-not-found',
    );
}

/**
 * Asks for a patch between two built versions (the gateway does it by itself for consecutive
 * versions, and for the builds a rollout finds running). A patch already requested or generated
 * for the same pair of builds is returned instead of generated again; one that failed or was
 * rejected is requested anew (an explicit retry).
 */
export async function requestPatch(
  ctx: RegistryContext,
  program: string,
  fromVersion: string,
  toVersion: string,
  by?: Actor,
): Promise<PatchRequestView> {
  return ctx.outbox.transact(async (tx) => {
    await knownProgram(tx.em, program);
    await lockProgram(tx.em, program);
    const from = await builtVersion(tx.em, program, fromVersion);
    const to = await builtVersion(tx.em, program, toVersion);
    if (from.buildId === to.buildId)
      throw new RegistryError(409, `versions '${fromVersion}' and '${toVersion}' are the same build`);
    const r = await ensurePatchRequest(tx, from, to, undefined, true);
    if (by)
      await recordAudit(tx.em, {
        actor: by,
        action: 'patch.request',
        program,
        target: `${fromVersion}->${toVersion}`,
        outcome: r.created ? 'requested' : 'existing',
        detail: { requestId: r.requestId },
      });
    await advanceWaiting(ctx, tx, program);
    return r;
  });
}

/**
 * Starts a rollout of `program` to `version` (planned from the inventory when its event is
 * handled). `retryOf`: the finished rollout it starts over (audited as `rollout.retry`).
 */
export async function requestRollout(
  ctx: RegistryContext,
  program: string,
  version: string,
  by?: Actor,
  retryOf?: string,
): Promise<RolloutRequestView> {
  await knownProgram(ctx.infra.ds.manager, program);
  const rolloutId = newId();
  // The rollout continues its version's trace (from submit to the last process updated).
  const versionTrace = (await ctx.infra.ds.getRepository(VersionEntity).findOneBy({ program, version }))
    ?.traceParent;
  const requested = () =>
    ctx.outbox.transact(async (tx) => {
      await builtVersion(tx.em, program, version);
      await tx.em.insert(RolloutEntity, {
        id: rolloutId,
        program,
        version,
        status: 'requested',
        notes: [],
        requestedAt: now(),
        completedAt: null,
      });
      tx.emit(Topics.rolloutRequested, program, { rolloutId, program, version } satisfies RolloutRequestedV1);
      if (by)
        await recordAudit(tx.em, {
          actor: by,
          action: retryOf ? 'rollout.retry' : 'rollout.request',
          program,
          target: version,
          outcome: 'accepted',
          detail: retryOf ? { rolloutId, retryOf } : { rolloutId },
        });
    });
  const attributes = { 'dsu.program': program, 'dsu.version': version, 'dsu.rollout_id': rolloutId };
  await inSpan('dsu rollout', attributes, requested, versionTrace);
  return retryOf ? { rolloutId, retryOf } : { rolloutId };
}

/** Ends a requested or running rollout as `aborted` with the reason, under the program lock (see abortRollout). */
export async function abortRollout(
  ctx: RegistryContext,
  rolloutId: string,
  reason: string,
  by?: Actor,
): Promise<AbortedRollout> {
  const program = (await ctx.infra.ds.getRepository(RolloutEntity).findOneBy({ id: rolloutId }))?.program;
  if (!program) throw new RegistryError(404, `rollout '${rolloutId}' is not known`, 'rollout-not-found');
  const aborted = await ctx.outbox.transact(async (tx) => {
    await lockProgram(tx.em, program);
    return abortInTx(tx, rolloutId, reason, by, now());
  });
  ctx.log('warn', 'rollout aborted', { ...aborted, reason, by: by?.id ?? null });
  return aborted;
}

/**
 * Starts a finished (aborted, failed or completed) rollout over as a new rollout to the same
 * version, planned afresh from the inventory: processes already on the target are left alone.
 */
export async function retryRollout(
  ctx: RegistryContext,
  rolloutId: string,
  by?: Actor,
): Promise<RolloutRequestView> {
  const old = await ctx.infra.ds.getRepository(RolloutEntity).findOneBy({ id: rolloutId });
  if (!old) throw new RegistryError(404, `rollout '${rolloutId}' is not known`, 'rollout-not-found');
  if (old.status === 'requested' || old.status === 'running')
    throw new RegistryError(
      409,
      `rollout '${rolloutId}' is still ${old.status}; abort it first ('dsu rollout abort ${rolloutId}')`,
    );
  return requestRollout(ctx, old.program, old.version, by, rolloutId);
}

/** The version, which must be built: a patch or a rollout needs its build (404 unknown, 409 not built). */
async function builtVersion(em: EntityManager, program: string, version: string): Promise<VersionEntity> {
  const v = await em.findOneBy(VersionEntity, { program, version });
  if (!v)
    throw new RegistryError(
      404,
      `version '${version}' of '${program}' is not known; submit it first`,
      'version-not-found',
    );
  if (v.status !== 'built')
    throw new RegistryError(
      409,
      `version '${version}' of '${program}' is ${v.status}, not built${v.error ? `: ${v.error.split('\n')[0]}` : ''}`,
      'version-not-built',
    );
  return v;
}
