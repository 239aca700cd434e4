import { LessThan } from 'typeorm';
import type { Log, Outbox } from '@dsu/outbox';
import { VersionEntity } from '@dsu/persistence';
import type { PipelineInfra } from '../shared/infra';
import { PeriodicCheck, span } from './periodic-check';

/**
 * The registry's guarantee that no version stays `building` forever: a build request that was
 * dead-lettered, or a compiler that is not running, leaves no `dsu.build.*` result behind, so a
 * version still building `DSU_BUILD_DEADLINE_MS` after its submission is ended `failed` with the
 * reason. A result that arrives later still wins (the projection overwrites the row).
 */
export class BuildDeadline {
  private readonly periodic: PeriodicCheck;

  constructor(
    private readonly infra: PipelineInfra,
    private readonly outbox: Outbox,
    private readonly log: Log,
  ) {
    this.periodic = new PeriodicCheck('build deadline', () => this.expire(), log);
  }

  /** Checks now and then every quarter of the deadline (at most every minute). */
  start(): void {
    this.periodic.start(this.infra.config.buildDeadlineMs);
  }

  stop(): Promise<void> {
    return this.periodic.stop();
  }

  /** Ends every version building since before the deadline; returns how many. */
  async expire(nowMs = Date.now()): Promise<number> {
    const deadlineMs = this.infra.config.buildDeadlineMs;
    const cutoff = new Date(nowMs - deadlineMs).toISOString();
    const within = span(deadlineMs);
    return this.outbox.transact(async ({ em }) => {
      const stale = await em.findBy(VersionEntity, { status: 'building', requestedAt: LessThan(cutoff) });
      for (const v of stale) {
        const error =
          `no build result within ${within} of the submission (DSU_BUILD_DEADLINE_MS): the build request ` +
          `was dead-lettered or no compiler service is consuming it; check the compiler's log and the dsu.dead-letter ` +
          `topic, then submit the source again under a new version label`;
        await em.update(
          VersionEntity,
          { program: v.program, version: v.version, status: 'building' },
          { status: 'failed', error, diagnostics: '', builtAt: new Date(nowMs).toISOString() },
        );
        this.log('error', 'build deadline passed; version ended failed', {
          program: v.program,
          version: v.version,
          requestedAt: v.requestedAt,
        });
      }
      return stale.length;
    });
  }
}
