import { In, LessThan } from 'typeorm';
import type { Log } from '@dsu/outbox';
import { PatchEntity, RolloutEntity, RolloutTargetEntity } from '@dsu/persistence';
import type { PipelineInfra } from '../shared/infra';
import { PeriodicCheck, span } from './periodic-check';
import type { Registry } from './registry';

/**
 * The registry's guarantee that no request waits forever, even when its answer was lost or its
 * service is gone: a patch request with no result `DSU_PATCH_DEADLINE_MS` after it was made is
 * ended `failed` (its waiting rollout targets fail with the reason), and a rollout still running
 * `DSU_ROLLOUT_DEADLINE_MS` after it was requested is ended `failed`, each process still waiting
 * for a patch or a result with the reason. A result that arrives later is still recorded.
 */
export class RequestDeadlines {
  private readonly periodic: PeriodicCheck;

  constructor(
    private readonly infra: PipelineInfra,
    private readonly registry: Registry,
    private readonly log: Log,
  ) {
    this.periodic = new PeriodicCheck('request deadline', () => this.expire(), log);
  }

  /** Checks now and then every quarter of the shorter deadline (at most every minute). */
  start(): void {
    const { patchDeadlineMs, rolloutDeadlineMs } = this.infra.config;
    this.periodic.start(Math.min(patchDeadlineMs, rolloutDeadlineMs));
  }

  stop(): Promise<void> {
    return this.periodic.stop();
  }

  /** Ends the overdue patch requests, then the overdue rollouts; returns how many of each. */
  async expire(nowMs = Date.now()): Promise<{ patches: number; rollouts: number }> {
    return { patches: await this.expirePatches(nowMs), rollouts: await this.expireRollouts(nowMs) };
  }

  private async expirePatches(nowMs: number): Promise<number> {
    const ms = this.infra.config.patchDeadlineMs;
    const stale = await this.infra.ds
      .getRepository(PatchEntity)
      .findBy({ status: 'requested', requestedAt: LessThan(new Date(nowMs - ms).toISOString()) });
    const error =
      `no patch result within ${span(ms)} of the request (DSU_PATCH_DEADLINE_MS): the patcher or the checker ` +
      `is not running, or the request was dead-lettered; check their logs and the dsu.dead-letter topic, then ` +
      `roll out again (the patch is requested anew)`;
    for (const program of new Set(stale.map((p) => p.program))) {
      await this.registry.underProgramLock(program, async ({ em }) => {
        const ids = stale.filter((p) => p.program === program).map((p) => p.requestId);
        // Only those still requested: a result may have committed since the read above.
        await em.update(
          PatchEntity,
          { requestId: In(ids), status: 'requested' },
          { status: 'failed', error, reasons: [], generatedAt: new Date(nowMs).toISOString() },
        );
      });
      this.log('error', 'patch deadline passed; request ended failed', {
        program,
        requestIds: stale.filter((p) => p.program === program).map((p) => p.requestId),
      });
    }
    return stale.length;
  }

  private async expireRollouts(nowMs: number): Promise<number> {
    const ms = this.infra.config.rolloutDeadlineMs;
    const stale = await this.infra.ds
      .getRepository(RolloutEntity)
      .findBy({ status: 'running', requestedAt: LessThan(new Date(nowMs - ms).toISOString()) });
    for (const r of stale) {
      await this.registry.underProgramLock(r.program, async ({ em }) => {
        const rollout = await em.findOneBy(RolloutEntity, { id: r.id, status: 'running' });
        if (!rollout) return;
        const open = await em.findBy(RolloutTargetEntity, {
          rolloutId: r.id,
          state: In(['waiting', 'commanded']),
        });
        const notes = open.map((t) => {
          const reason =
            t.state === 'waiting'
              ? `no patch from build ${t.fromBuildId} was decided within ${span(ms)} of the rollout (DSU_ROLLOUT_DEADLINE_MS)`
              : `no result from host ${t.host} within ${span(ms)} of the rollout (DSU_ROLLOUT_DEADLINE_MS): its applier is not running or cannot reach the process; check it, then 'dsu rollout retry ${r.id}'`;
          return { t, reason };
        });
        for (const { t, reason } of notes)
          await em.update(
            RolloutTargetEntity,
            { rolloutId: r.id, host: t.host, pid: t.pid },
            { state: 'failed', reason },
          );
        rollout.notes = [
          ...rollout.notes,
          ...notes.map(({ t, reason }) => `pid ${t.pid} on ${t.host}: ${reason}`),
        ];
        rollout.status = 'failed';
        rollout.completedAt = new Date(nowMs).toISOString();
        await em.save(rollout);
      });
      this.log('error', 'rollout deadline passed; rollout ended failed', {
        rolloutId: r.id,
        program: r.program,
        version: r.version,
        requestedAt: r.requestedAt,
      });
    }
    return stale.length;
  }
}
