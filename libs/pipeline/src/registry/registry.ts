import { type EntityManager, In, IsNull, Not } from 'typeorm';
import {
  type AgentHeartbeatV1,
  type BuildCompletedV1,
  type BuildFailedV1,
  type CloudEvent,
  type PatchFailedV1,
  type PatchGeneratedV1,
  type PatchRequestedV1,
  type PatchVerdictV1,
  type RolloutRequestedV1,
  Topics,
  type UpdateCommandV1,
  type UpdateResultV1,
  validatePayload,
} from '@dsu/events';
import { type Actor, recordAudit } from '@dsu/access';
import { type Log, newId, type Outbox, type OutboxTx } from '@dsu/outbox';
import {
  InventoryEntity,
  PatchEntity,
  ProgramEntity,
  RolloutEntity,
  RolloutTargetEntity,
  type RolloutTargetState,
  UpdateResultEntity,
  VerdictEntity,
  VersionEntity,
} from '@dsu/persistence';
import type { SafetyVerdict } from '@dsu/patch-format';
import type { Readable } from 'node:stream';
import { ArchiveRefusedError } from '../shared/archive-limits';
import type { PipelineInfra } from '../shared/infra';
import { receiveArchive } from '../shared/receive-archive';
import { type AbortedRollout, abortRollout } from './abort-rollout';
import { RegistryError } from './errors';
import { failedNote, groupCommands, patchState, type PlanPatch, planRollout } from './plan-rollout';

export const GATEWAY = 'gateway';
/** The audit log's actor id of the checker's verdicts. */
const CHECKER_ACTOR = 'checker';
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const now = () => new Date().toISOString();

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

export interface VersionView {
  program: string;
  version: string;
  status: string;
  buildId: string | null;
  executable: string | null;
  executableSha256: string | null;
  modelSha256: string | null;
  sourceSha256: string;
  error: string | null;
  diagnostics: string | null;
  durationMs: number | null;
  requestedAt: string;
  builtAt: string | null;
  /** The patch from the previous version, once requested; null when this is the first version. */
  patch: {
    requestId: string;
    id: string | null;
    status: string;
    verdict: string | null;
    /** Where the patch may apply, by the checker's analysis (null before it was checked). */
    updatePoints: SafetyVerdict['updatePoints'] | null;
    fromVersion: string;
    error: string | null;
  } | null;
}

export interface RolloutView {
  rolloutId: string;
  program: string;
  version: string;
  status: string;
  notes: string[];
  requestedAt: string;
  completedAt: string | null;
  /** The patch of the first commanded target (every patch: `patchIds`). */
  patchId: string | null;
  patchIds: string[];
  targets: {
    host: string;
    pid: number;
    patchId: string | null;
    reported: boolean;
    state: RolloutTargetState;
    fromBuildId: string | null;
    reason: string | null;
  }[];
  results: {
    host: string;
    pid: number;
    outcome: string;
    pauseUs: number;
    updatePoint: string | null;
    reasons: string[];
    patchId: string | null;
    buildId: string | null;
    reportedAt: string;
  }[];
}

/**
 * The gateway's registry: a projection of the pipeline's events into the database, the
 * commands users give through the HTTP API, and rollouts (planning per-host update commands
 * from the inventory, completing a rollout when every targeted process reported).
 */
export class Registry {
  constructor(
    private readonly infra: PipelineInfra,
    private readonly outbox: Outbox,
    private readonly log: Log,
  ) {}

  private get ds() {
    return this.infra.ds;
  }

  subscription() {
    return {
      group: this.infra.group(GATEWAY),
      topics: [
        Topics.buildCompleted,
        Topics.buildFailed,
        Topics.patchGenerated,
        Topics.patchFailed,
        Topics.patchVerdict,
        Topics.rolloutRequested,
        Topics.updateResult,
        Topics.agentHeartbeat,
      ],
      validate: validatePayload,
      handler: (e: CloudEvent, topic: string) => this.project(e, topic),
    };
  }

  // ---- commands (HTTP API) ----

  async registerProgram(
    id: string,
    description = '',
    by?: Actor,
  ): Promise<{ id: string; description: string; created: boolean }> {
    if (!NAME.test(id))
      throw new RegistryError(400, `program id '${id}' must be 1-128 letters, digits, '.', '_' or '-'`);
    return this.outbox.transact(async ({ em }) => {
      const existing = await em.findOneBy(ProgramEntity, { id });
      if (existing) return { id, description: existing.description, created: false };
      await em.insert(ProgramEntity, { id, description });
      if (by)
        await recordAudit(em, { actor: by, action: 'program.register', program: id, outcome: 'created' });
      return { id, description, created: true };
    });
  }

  async listPrograms(): Promise<{ id: string; description: string }[]> {
    return (await this.ds.getRepository(ProgramEntity).find({ order: { id: 'ASC' } })).map((p) => ({
      id: p.id,
      description: p.description,
    }));
  }

  /** Stores the source tarball and asks the compiler to build it, in one transaction with the version row. */
  async submitVersion(s: SubmitVersion): Promise<VersionView> {
    if (!NAME.test(s.version))
      throw new RegistryError(400, `version '${s.version}' must be 1-128 letters, digits, '.', '_' or '-'`);
    if (Buffer.isBuffer(s.source) && s.source.length === 0)
      throw new RegistryError(
        400,
        'the source tarball is empty; send the gzip tar of the source directory as the request body',
      );
    if (Buffer.isBuffer(s.source) && (s.source[0] !== 0x1f || s.source[1] !== 0x8b))
      throw new RegistryError(400, 'the request body is not a gzip tarball (content-type application/gzip)');
    if (!(await this.ds.getRepository(ProgramEntity).existsBy({ id: s.program }))) {
      throw new RegistryError(
        404,
        `program '${s.program}' is not registered; POST /programs {"id":"${s.program}"} first`,
      );
    }
    // Checked while it streams in (limits, tree rules): a bad tree is refused here, at submit time.
    const { archiveLimits, uploadMaxBytes } = this.infra.config;
    const src = await receiveArchive(s.source, this.infra.store, archiveLimits, uploadMaxBytes).catch((err) => {
      throw err instanceof ArchiveRefusedError ? new RegistryError(err.status, err.message) : err;
    });
    await this.outbox.transact(async (tx) => {
      if (await tx.em.existsBy(VersionEntity, { program: s.program, version: s.version })) {
        throw new RegistryError(
          409,
          `version '${s.version}' of '${s.program}' was already submitted; submit the change under a new version label`,
        );
      }
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
    return this.getVersion(s.program, s.version);
  }

  /**
   * Asks for a patch between two built versions (the gateway does it by itself for consecutive
   * versions, and for the builds a rollout finds running). A patch already requested or generated
   * for the same pair of builds is returned instead of generated again; one that failed or was
   * rejected is requested anew (an explicit retry).
   */
  async requestPatch(
    program: string,
    fromVersion: string,
    toVersion: string,
    by?: Actor,
  ): Promise<{ requestId: string; created: boolean }> {
    return this.outbox.transact(async (tx) => {
      await this.lockProgram(tx.em, program);
      const from = await this.builtVersion(tx.em, program, fromVersion);
      const to = await this.builtVersion(tx.em, program, toVersion);
      if (from.buildId === to.buildId)
        throw new RegistryError(409, `versions '${fromVersion}' and '${toVersion}' are the same build`);
      const r = await this.ensurePatchRequest(tx, from, to, undefined, true);
      if (by)
        await recordAudit(tx.em, {
          actor: by,
          action: 'patch.request',
          program,
          target: `${fromVersion}->${toVersion}`,
          outcome: r.created ? 'requested' : 'existing',
          detail: { requestId: r.requestId },
        });
      await this.advanceWaiting(tx, program);
      return r;
    });
  }

  /**
   * Starts a rollout of `program` to `version` (planned from the inventory when its event is
   * handled). `retryOf`: the finished rollout it starts over (audited as `rollout.retry`).
   */
  async requestRollout(
    program: string,
    version: string,
    by?: Actor,
    retryOf?: string,
  ): Promise<{ rolloutId: string; retryOf?: string }> {
    const rolloutId = newId();
    await this.outbox.transact(async (tx) => {
      await this.builtVersion(tx.em, program, version);
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
    return retryOf ? { rolloutId, retryOf } : { rolloutId };
  }

  /** Ends a requested or running rollout as `aborted` with the reason (see abortRollout). */
  async abortRollout(rolloutId: string, reason: string, by?: Actor): Promise<AbortedRollout> {
    const program = (await this.ds.getRepository(RolloutEntity).findOneBy({ id: rolloutId }))?.program;
    if (!program) throw new RegistryError(404, `rollout '${rolloutId}' is not known`);
    const aborted = await this.outbox.transact(async (tx) => {
      await this.lockProgram(tx.em, program);
      return abortRollout(tx, rolloutId, reason, by, now());
    });
    this.log('warn', 'rollout aborted', { ...aborted, reason, by: by?.id ?? null });
    return aborted;
  }

  /**
   * Starts a finished (aborted, failed or completed) rollout over as a new rollout to the same
   * version, planned afresh from the inventory: processes already on the target are left alone.
   */
  async retryRollout(rolloutId: string, by?: Actor): Promise<{ rolloutId: string; retryOf?: string }> {
    const old = await this.ds.getRepository(RolloutEntity).findOneBy({ id: rolloutId });
    if (!old) throw new RegistryError(404, `rollout '${rolloutId}' is not known`);
    if (old.status === 'requested' || old.status === 'running')
      throw new RegistryError(
        409,
        `rollout '${rolloutId}' is still ${old.status}; abort it first ('dsu rollout abort ${rolloutId}')`,
      );
    return this.requestRollout(old.program, old.version, by, rolloutId);
  }

  // ---- queries ----

  async listVersions(program: string): Promise<VersionView[]> {
    const rows = await this.ds
      .getRepository(VersionEntity)
      .find({ where: { program }, order: { seq: 'ASC' } });
    return Promise.all(rows.map((v) => this.view(v)));
  }

  async getVersion(program: string, version: string): Promise<VersionView> {
    const v = await this.ds.getRepository(VersionEntity).findOneBy({ program, version });
    if (!v)
      throw new RegistryError(404, `version '${version}' of '${program}' is not known; submit it first`);
    return this.view(v);
  }

  async listPatches(program?: string) {
    const rows = await this.ds
      .getRepository(PatchEntity)
      .find({ where: program ? { program } : {}, order: { requestedAt: 'ASC' } });
    const verdicts = await this.verdictsOf(
      rows.map((r) => r.patchId).filter((id): id is string => id !== null),
    );
    return rows.map((p) => ({
      requestId: p.requestId,
      program: p.program,
      fromVersion: p.fromVersion,
      toVersion: p.toVersion,
      fromBuildId: p.fromBuildId,
      toBuildId: p.toBuildId,
      status: p.status,
      patchId: p.patchId,
      bundleSha256: p.bundleSha256,
      functions: p.functions ?? [],
      error: p.error,
      reasons: p.reasons ?? [],
      verdict: p.patchId ? (verdicts.get(p.patchId)?.verdict ?? null) : null,
      requestedAt: p.requestedAt,
      generatedAt: p.generatedAt,
    }));
  }

  async listVerdicts(program?: string) {
    return (
      await this.ds
        .getRepository(VerdictEntity)
        .find({ where: program ? { program } : {}, order: { checkedAt: 'ASC' } })
    ).map((v) => ({ ...v }));
  }

  async listRollouts(program?: string): Promise<RolloutView[]> {
    const rows = await this.ds
      .getRepository(RolloutEntity)
      .find({ where: program ? { program } : {}, order: { requestedAt: 'ASC' } });
    return Promise.all(rows.map((r) => this.rolloutView(r)));
  }

  async getRollout(id: string): Promise<RolloutView> {
    const r = await this.ds.getRepository(RolloutEntity).findOneBy({ id });
    if (!r) throw new RegistryError(404, `rollout '${id}' is not known`);
    return this.rolloutView(r);
  }

  async listResults(rolloutId?: string) {
    return (
      await this.ds
        .getRepository(UpdateResultEntity)
        .find({ where: rolloutId ? { rolloutId } : {}, order: { reportedAt: 'ASC' } })
    ).map((r) => ({ ...r }));
  }

  /** Each host's processes with the version each runs (from the registry's build ids). */
  async listInventory() {
    const hosts = await this.ds.getRepository(InventoryEntity).find({ order: { host: 'ASC' } });
    const builds = await this.ds
      .getRepository(VersionEntity)
      .find({ where: { buildId: In(hosts.flatMap((h) => h.processes.map((p) => p.buildId))) } });
    const versionOf = new Map(builds.map((b) => [`${b.program}\0${b.buildId}`, b.version]));
    return hosts.map((h) => ({
      host: h.host,
      runDir: h.runDir,
      seenAt: h.seenAt,
      processes: h.processes.map((p) => ({
        ...p,
        version: versionOf.get(`${p.program}\0${p.buildId}`) ?? null,
      })),
    }));
  }

  // ---- projection of events ----

  async project(event: CloudEvent, topic: string): Promise<void> {
    if (topic === Topics.agentHeartbeat) return this.onHeartbeat(event);
    await this.outbox.once(GATEWAY, event, async (tx) => {
      switch (topic) {
        case Topics.buildCompleted:
          return this.onBuildCompleted(tx, event);
        case Topics.buildFailed:
          return this.onBuildFailed(tx, event.data as BuildFailedV1);
        case Topics.patchGenerated:
          return this.onPatchGenerated(tx, event.data as PatchGeneratedV1);
        case Topics.patchFailed:
          await this.lockProgram(tx.em, (event.data as PatchFailedV1).program);
          await this.onPatchFailed(tx, event.data as PatchFailedV1);
          return this.advanceWaiting(tx, (event.data as PatchFailedV1).program, event);
        case Topics.patchVerdict:
          await this.lockProgram(tx.em, (event.data as PatchVerdictV1).program);
          await this.onVerdict(tx, event.data as PatchVerdictV1);
          return this.advanceWaiting(tx, (event.data as PatchVerdictV1).program, event);
        case Topics.rolloutRequested:
          return this.planRollout(tx, event);
        case Topics.updateResult:
          return this.onResult(tx, event);
      }
    });
  }

  private async onBuildCompleted(tx: OutboxTx, event: CloudEvent): Promise<void> {
    const b = event.data as BuildCompletedV1;
    await this.lockProgram(tx.em, b.program);
    const v = await tx.em.findOneBy(VersionEntity, { program: b.program, version: b.version });
    if (!v)
      return this.log('warn', 'build of an unknown version ignored', {
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
    if (earlier) await this.ensurePatchRequest(tx, earlier, v, event);
  }

  /**
   * The patch request for a pair of builds: an existing one (requested or generated; failed too,
   * unless `retryFailed`) is reused, so no pair is generated twice; otherwise a new one is emitted.
   * Callers hold the program lock, so concurrent transactions cannot both emit one.
   */
  private async ensurePatchRequest(
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
    const verdicts = await this.verdictsOf(
      existing.map((p) => p.patchId).filter((id): id is string => id !== null),
      tx.em,
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
    return { requestId: await this.emitPatchRequest(tx, from, to, causedBy), created: true };
  }

  private async emitPatchRequest(
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

  private async onBuildFailed(tx: OutboxTx, b: BuildFailedV1): Promise<void> {
    await tx.em.update(
      VersionEntity,
      { program: b.program, version: b.version },
      { status: 'failed', error: b.error, diagnostics: b.diagnostics, builtAt: now() },
    );
  }

  private async onPatchGenerated(tx: OutboxTx, p: PatchGeneratedV1): Promise<void> {
    await tx.em.update(
      PatchEntity,
      { requestId: p.requestId },
      {
        status: 'generated',
        patchId: p.patchId,
        bundleSha256: p.bundleSha256,
        functions: p.functions,
        generatedAt: now(),
      },
    );
  }

  private async onPatchFailed(tx: OutboxTx, p: PatchFailedV1): Promise<void> {
    await tx.em.update(
      PatchEntity,
      { requestId: p.requestId },
      { status: 'failed', error: p.error, reasons: p.reasons, generatedAt: now() },
    );
  }

  private async onVerdict(tx: OutboxTx, v: PatchVerdictV1): Promise<void> {
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

  private async onHeartbeat(event: CloudEvent): Promise<void> {
    const h = event.data as AgentHeartbeatV1;
    await this.outbox.transact(async ({ em }) => {
      const row = await em.findOneBy(InventoryEntity, { host: h.host });
      // Redelivered or reordered heartbeats must not overwrite a newer inventory.
      if (row && row.seenAt > event.time) return;
      await em.save(InventoryEntity, {
        host: h.host,
        runDir: h.runDir,
        processes: h.processes,
        seenAt: event.time,
      });
    });
  }

  /**
   * Plans a rollout from the latest inventory: every process of the program whose build is not
   * the target's is targeted. Processes whose build has an approved patch to the target get it at
   * once (one command per host and patch); for a build with no patch yet, a patch is requested
   * (once per distinct build) and its processes wait for the verdict; a patch that failed or was
   * rejected ends those processes' part with a note. The rest continues in `advanceWaiting`.
   */
  private async planRollout(tx: OutboxTx, event: CloudEvent): Promise<void> {
    const req = event.data as RolloutRequestedV1;
    await this.lockProgram(tx.em, req.program);
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
      patches: await this.planPatches(tx.em, req.program, [target.buildId]),
      builtVersions: new Map(built.map((v) => [v.buildId as string, v.version])),
    });
    const byBuild = new Map(built.map((v) => [v.buildId as string, v]));
    for (const r of plan.requests) {
      await this.ensurePatchRequest(tx, byBuild.get(r.fromBuildId) as VersionEntity, target, event);
    }
    const states: Record<(typeof plan.targets)[number]['action'], RolloutTargetState> = {
      command: 'commanded',
      wait: 'waiting',
      failed: 'failed',
    };
    for (const t of plan.targets)
      await tx.em.insert(RolloutTargetEntity, {
        rolloutId: req.rolloutId,
        host: t.host,
        pid: t.pid,
        patchId: t.action === 'command' ? (t.patch?.patchId ?? null) : null,
        reported: false,
        state: states[t.action],
        fromBuildId: t.fromBuildId,
        toBuildId: target.buildId,
        reason: t.reason,
      });
    await this.emitCommands(tx, rollout, plan.commands, event);
    rollout.notes = plan.targets.filter((t) => t.action === 'failed').map((t) => failedNote(t, req.version));
    rollout.status = 'running';
    await tx.em.save(rollout);
    await this.finishIfDone(tx, rollout);
    this.log('info', 'rollout planned', {
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
  private async advanceWaiting(tx: OutboxTx, program: string, causedBy?: CloudEvent): Promise<void> {
    const rollouts = await tx.em.findBy(RolloutEntity, { program, status: 'running' });
    if (rollouts.length === 0) return;
    const waiting = await tx.em.find(RolloutTargetEntity, {
      where: { rolloutId: In(rollouts.map((r) => r.id)), state: 'waiting' },
      order: { host: 'ASC', pid: 'ASC' },
    });
    if (waiting.length === 0) return;
    const patches = await this.planPatches(tx.em, program, [
      ...new Set(waiting.map((t) => t.toBuildId as string)),
    ]);
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
            await this.ensurePatchRequest(tx, from, to, causedBy);
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
      await this.emitCommands(tx, rollout, groupCommands(ready), causedBy);
      await tx.em.save(rollout);
      await this.finishIfDone(tx, rollout);
    }
  }

  /** Continues the rollouts a stopped gateway left waiting for patches whose verdicts came meanwhile. */
  async resume(): Promise<void> {
    const running = await this.ds.getRepository(RolloutEntity).findBy({ status: 'running' });
    for (const program of new Set(running.map((r) => r.program))) await this.underProgramLock(program);
  }

  /**
   * Runs `fn` in a transaction holding the program's lock, then moves the program's waiting
   * rollout targets on: for changes made outside an event (the request deadlines).
   */
  async underProgramLock(program: string, fn?: (tx: OutboxTx) => Promise<void>): Promise<void> {
    await this.outbox.transact(async (tx) => {
      await this.lockProgram(tx.em, program);
      await fn?.(tx);
      await this.advanceWaiting(tx, program);
    });
  }

  private async emitCommands(
    tx: OutboxTx,
    rollout: RolloutEntity,
    commands: { host: string; patch: PlanPatch; pids: number[] }[],
    causedBy?: CloudEvent,
  ): Promise<void> {
    if (commands.length === 0) return;
    const verdicts = await this.verdictsOf(
      commands.map((c) => c.patch.patchId as string),
      tx.em,
    );
    const bundles = new Map(
      (await tx.em.findBy(PatchEntity, { requestId: In(commands.map((c) => c.patch.requestId)) })).map(
        (p) => [p.requestId, p],
      ),
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
        timeoutMs: this.infra.config.applyTimeoutMs,
      };
      tx.emit(Topics.updateCommand, host, cmd, { causedBy, subject: rollout.program });
    }
  }

  /** Completes a running rollout once no target waits for a patch or a result. */
  private async finishIfDone(tx: OutboxTx, rollout: RolloutEntity): Promise<void> {
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
    this.log('info', 'rollout finished', {
      rolloutId: rollout.id,
      status: rollout.status,
      results: results.length,
    });
  }

  private async onResult(tx: OutboxTx, event: CloudEvent): Promise<void> {
    const r = event.data as UpdateResultV1;
    if (await tx.em.existsBy(UpdateResultEntity, { rolloutId: r.rolloutId, host: r.host, pid: r.pid }))
      return;
    await tx.em.insert(UpdateResultEntity, {
      rolloutId: r.rolloutId,
      host: r.host,
      pid: r.pid,
      program: r.program,
      patchId: r.patchId,
      outcome: r.outcome,
      pauseUs: Math.round(r.pauseUs),
      updatePoint: r.updatePoint,
      reasons: r.reasons,
      buildId: r.buildId,
      eventId: event.id,
      reportedAt: now(),
    });
    await tx.em.update(
      RolloutTargetEntity,
      { rolloutId: r.rolloutId, host: r.host, pid: r.pid },
      { reported: true, state: 'reported' },
    );
    const rollout = await tx.em.findOneBy(RolloutEntity, { id: r.rolloutId });
    if (rollout) await this.finishIfDone(tx, rollout);
  }

  // ---- helpers ----

  /**
   * Serializes the transactions that request patches or move rollouts of one program (PostgreSQL:
   * a row lock on the program; SQLite runs one transaction at a time anyway), so two of them
   * cannot both request the same patch, or both miss a verdict that commits in between.
   */
  private async lockProgram(em: EntityManager, program: string): Promise<void> {
    if (em.connection.options.type !== 'postgres') return;
    await em
      .createQueryBuilder(ProgramEntity, 'p')
      .setLock('pessimistic_write')
      .where('p.id = :program', { program })
      .getOne();
  }

  /** The program's patches to the given builds, with their verdicts, as the planner sees them. */
  private async planPatches(em: EntityManager, program: string, toBuildIds: string[]): Promise<PlanPatch[]> {
    const rows = await em.findBy(PatchEntity, { program, toBuildId: In(toBuildIds) });
    const verdicts = await this.verdictsOf(
      rows.map((p) => p.patchId).filter((id): id is string => id !== null),
      em,
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

  private async builtVersion(em: EntityManager, program: string, version: string): Promise<VersionEntity> {
    const v = await em.findOneBy(VersionEntity, { program, version });
    if (!v)
      throw new RegistryError(404, `version '${version}' of '${program}' is not known; submit it first`);
    if (v.status !== 'built')
      throw new RegistryError(
        409,
        `version '${version}' of '${program}' is ${v.status}, not built${v.error ? `: ${v.error.split('\n')[0]}` : ''}`,
      );
    return v;
  }

  private async verdictsOf(
    patchIds: string[],
    em: EntityManager = this.ds.manager,
  ): Promise<Map<string, VerdictEntity>> {
    if (patchIds.length === 0) return new Map();
    return new Map((await em.findBy(VerdictEntity, { patchId: In(patchIds) })).map((v) => [v.patchId, v]));
  }

  private async view(v: VersionEntity): Promise<VersionView> {
    // The patch from the previous version: the first one requested to this version (at its build);
    // patches a rollout asked for later from older builds are in listPatches. A retry of it wins.
    const toThis = await this.ds
      .getRepository(PatchEntity)
      .find({ where: { program: v.program, toVersion: v.version }, order: { requestedAt: 'ASC' } });
    const patch = toThis.filter((p) => p.fromVersion === toThis[0]?.fromVersion).pop() ?? null;
    const verdict = patch?.patchId
      ? await this.ds.getRepository(VerdictEntity).findOneBy({ patchId: patch.patchId })
      : null;
    return {
      program: v.program,
      version: v.version,
      status: v.status,
      buildId: v.buildId,
      executable: v.executable,
      executableSha256: v.executableSha256,
      modelSha256: v.modelSha256,
      sourceSha256: v.sourceSha256,
      error: v.error,
      diagnostics: v.diagnostics,
      durationMs: v.durationMs,
      requestedAt: v.requestedAt,
      builtAt: v.builtAt,
      patch: patch
        ? {
            requestId: patch.requestId,
            id: patch.patchId,
            status: patch.status,
            verdict: verdict?.verdict ?? null,
            updatePoints: verdict?.updatePoints ?? null,
            fromVersion: patch.fromVersion,
            error: patch.error,
          }
        : null,
    };
  }

  private async rolloutView(r: RolloutEntity): Promise<RolloutView> {
    const targets = await this.ds
      .getRepository(RolloutTargetEntity)
      .find({ where: { rolloutId: r.id }, order: { host: 'ASC', pid: 'ASC' } });
    const results = await this.ds
      .getRepository(UpdateResultEntity)
      .find({ where: { rolloutId: r.id }, order: { host: 'ASC', pid: 'ASC' } });
    return {
      rolloutId: r.id,
      program: r.program,
      version: r.version,
      status: r.status,
      notes: r.notes,
      requestedAt: r.requestedAt,
      completedAt: r.completedAt,
      patchId: targets.find((t) => t.patchId)?.patchId ?? null,
      patchIds: [...new Set(targets.map((t) => t.patchId).filter((id): id is string => id !== null))],
      targets: targets.map((t) => ({
        host: t.host,
        pid: t.pid,
        patchId: t.patchId,
        reported: t.reported,
        state: t.state,
        fromBuildId: t.fromBuildId,
        reason: t.reason,
      })),
      results: results.map((x) => ({
        host: x.host,
        pid: x.pid,
        outcome: x.outcome,
        pauseUs: x.pauseUs,
        updatePoint: x.updatePoint,
        reasons: x.reasons,
        patchId: x.patchId,
        buildId: x.buildId,
        reportedAt: x.reportedAt,
      })),
    };
  }
}
