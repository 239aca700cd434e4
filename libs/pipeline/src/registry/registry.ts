import { type EntityManager, In } from 'typeorm';
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
import { type Log, newId, type Outbox, type OutboxTx } from '@dsu/outbox';
import {
  InventoryEntity,
  PatchEntity,
  ProgramEntity,
  RolloutEntity,
  RolloutTargetEntity,
  UpdateResultEntity,
  VerdictEntity,
  VersionEntity,
} from '@dsu/persistence';
import type { PipelineInfra } from '../shared/infra';
import { RegistryError } from './errors';

export const GATEWAY = 'gateway';
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const now = () => new Date().toISOString();

export interface SubmitVersion {
  program: string;
  version: string;
  source: Buffer;
  bin?: string | null;
  updatePoints?: string[];
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
  patchId: string | null;
  targets: { host: string; pid: number; patchId: string; reported: boolean }[];
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
  ): Promise<{ id: string; description: string; created: boolean }> {
    if (!NAME.test(id))
      throw new RegistryError(400, `program id '${id}' must be 1-128 letters, digits, '.', '_' or '-'`);
    return this.outbox.transact(async ({ em }) => {
      const existing = await em.findOneBy(ProgramEntity, { id });
      if (existing) return { id, description: existing.description, created: false };
      await em.insert(ProgramEntity, { id, description });
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
    if (s.source.length === 0)
      throw new RegistryError(
        400,
        'the source tarball is empty; send the gzip tar of the source directory as the request body',
      );
    if (s.source[0] !== 0x1f || s.source[1] !== 0x8b)
      throw new RegistryError(400, 'the request body is not a gzip tarball (content-type application/gzip)');
    if (!(await this.ds.getRepository(ProgramEntity).existsBy({ id: s.program }))) {
      throw new RegistryError(
        404,
        `program '${s.program}' is not registered; POST /programs {"id":"${s.program}"} first`,
      );
    }
    const src = await this.infra.store.put(s.source);
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
      });
    });
    return this.getVersion(s.program, s.version);
  }

  /** Asks for a patch between two built versions (the gateway does it by itself for consecutive versions). */
  async requestPatch(
    program: string,
    fromVersion: string,
    toVersion: string,
  ): Promise<{ requestId: string }> {
    return this.outbox.transact(async (tx) => {
      const from = await this.builtVersion(tx.em, program, fromVersion);
      const to = await this.builtVersion(tx.em, program, toVersion);
      return { requestId: await this.emitPatchRequest(tx, from, to) };
    });
  }

  async requestRollout(program: string, version: string): Promise<{ rolloutId: string }> {
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
    });
    return { rolloutId };
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
          return this.onPatchFailed(tx, event.data as PatchFailedV1);
        case Topics.patchVerdict:
          return this.onVerdict(tx, event.data as PatchVerdictV1);
        case Topics.rolloutRequested:
          return this.planRollout(tx, event);
        case Topics.updateResult:
          return this.onResult(tx, event);
      }
    });
  }

  private async onBuildCompleted(tx: OutboxTx, event: CloudEvent): Promise<void> {
    const b = event.data as BuildCompletedV1;
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
    if (earlier) await this.emitPatchRequest(tx, earlier, v, event);
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
      signature: v.signature,
      keyId: v.keyId,
      checkedAt: now(),
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
   * Turns a rollout into one update command per host and patch, for the processes of the
   * program whose build is not the target's; a process with no approved patch from its build is
   * noted on the rollout (and not targeted).
   */
  private async planRollout(tx: OutboxTx, event: CloudEvent): Promise<void> {
    const req = event.data as RolloutRequestedV1;
    const rollout = await tx.em.findOneBy(RolloutEntity, { id: req.rolloutId });
    if (!rollout || rollout.status !== 'requested') return;
    const target = await tx.em.findOneBy(VersionEntity, { program: req.program, version: req.version });
    const notes: string[] = [];
    let targets = 0;
    if (!target?.buildId) {
      notes.push(`version '${req.version}' has no build`);
    } else {
      const patches = await tx.em.findBy(PatchEntity, {
        program: req.program,
        toBuildId: target.buildId,
        status: 'generated',
      });
      const verdicts = await this.verdictsOf(
        patches.map((p) => p.patchId as string),
        tx.em,
      );
      const hosts = await tx.em.find(InventoryEntity, { order: { host: 'ASC' } });
      for (const h of hosts) {
        const groups = new Map<string, { patch: PatchEntity; verdict: VerdictEntity; pids: number[] }>();
        for (const p of h.processes.filter(
          (x) => x.program === req.program && x.buildId !== target.buildId,
        )) {
          const candidates = patches.filter((x) => x.fromBuildId === p.buildId);
          const approved = candidates.find((x) => verdicts.get(x.patchId as string)?.verdict === 'approved');
          if (!approved) {
            const why =
              candidates.length === 0
                ? 'there is no patch from its build'
                : `the patch from its build is ${verdicts.get(candidates[0].patchId as string)?.verdict ?? 'not checked yet'}`;
            notes.push(
              `pid ${p.pid} on ${h.host} runs build ${p.buildId}: ${why} to version '${req.version}'`,
            );
            continue;
          }
          const g = groups.get(approved.patchId as string) ?? {
            patch: approved,
            verdict: verdicts.get(approved.patchId as string) as VerdictEntity,
            pids: [],
          };
          g.pids.push(p.pid);
          groups.set(approved.patchId as string, g);
        }
        for (const { patch, verdict, pids } of groups.values()) {
          for (const pid of pids)
            await tx.em.insert(RolloutTargetEntity, {
              rolloutId: req.rolloutId,
              host: h.host,
              pid,
              patchId: patch.patchId as string,
              reported: false,
            });
          targets += pids.length;
          const cmd: UpdateCommandV1 = {
            rolloutId: req.rolloutId,
            host: h.host,
            program: req.program,
            patchId: patch.patchId as string,
            bundleSha256: patch.bundleSha256 as string,
            fromBuildId: patch.fromBuildId,
            toBuildId: patch.toBuildId,
            signature: verdict.signature as string,
            keyId: verdict.keyId as string,
            pids,
            timeoutMs: this.infra.config.applyTimeoutMs,
          };
          tx.emit(Topics.updateCommand, h.host, cmd, { causedBy: event, subject: req.program });
        }
      }
    }
    rollout.notes = notes;
    rollout.status = targets > 0 ? 'running' : notes.length > 0 ? 'failed' : 'completed';
    if (targets === 0) rollout.completedAt = now();
    await tx.em.save(rollout);
    this.log('info', 'rollout planned', {
      rolloutId: req.rolloutId,
      program: req.program,
      version: req.version,
      targets,
      notes: notes.length,
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
      { reported: true },
    );
    const rollout = await tx.em.findOneBy(RolloutEntity, { id: r.rolloutId });
    if (!rollout || rollout.status !== 'running') return;
    if (await tx.em.existsBy(RolloutTargetEntity, { rolloutId: r.rolloutId, reported: false })) return;
    const results = await tx.em.findBy(UpdateResultEntity, { rolloutId: r.rolloutId });
    rollout.status =
      results.every((x) => x.outcome === 'applied') && rollout.notes.length === 0 ? 'completed' : 'failed';
    rollout.completedAt = now();
    await tx.em.save(rollout);
    this.log('info', 'rollout finished', {
      rolloutId: r.rolloutId,
      status: rollout.status,
      results: results.length,
    });
  }

  // ---- helpers ----

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
    const patch = await this.ds
      .getRepository(PatchEntity)
      .findOne({ where: { program: v.program, toVersion: v.version }, order: { requestedAt: 'DESC' } });
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
      patchId: targets[0]?.patchId ?? null,
      targets: targets.map((t) => ({ host: t.host, pid: t.pid, patchId: t.patchId, reported: t.reported })),
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
