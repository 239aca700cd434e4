import { LessThan } from 'typeorm';
import type { Log, Outbox } from '@dsu/outbox';
import { VersionEntity } from '@dsu/persistence';
import type { PipelineInfra } from '../shared/infra';

/**
 * The registry's guarantee that no version stays `building` forever: a build request that was
 * dead-lettered, or a compiler that is not running, leaves no `dsu.build.*` result behind, so a
 * version still building `DSU_BUILD_DEADLINE_MS` after its submission is ended `failed` with the
 * reason. A result that arrives later still wins (the projection overwrites the row).
 */
export class BuildDeadline {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(
    private readonly infra: PipelineInfra,
    private readonly outbox: Outbox,
    private readonly log: Log,
  ) {}

  /** Checks now and then every quarter of the deadline (at most every minute). */
  start(): void {
    const every = Math.max(50, Math.min(60_000, Math.floor(this.infra.config.buildDeadlineMs / 4)));
    const tick = () => {
      this.running ??= this.expire()
        .then(() => undefined)
        .catch((err) => this.log('warn', 'build deadline check failed; will retry', { error: String(err) }))
        .finally(() => (this.running = undefined));
    };
    this.timer = setInterval(tick, every);
    this.timer.unref();
    tick();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Ends every version building since before the deadline; returns how many. */
  async expire(nowMs = Date.now()): Promise<number> {
    const deadlineMs = this.infra.config.buildDeadlineMs;
    const cutoff = new Date(nowMs - deadlineMs).toISOString();
    const within =
      deadlineMs >= 60_000
        ? `${Math.round(deadlineMs / 6_000) / 10} minutes`
        : `${Math.round(deadlineMs / 100) / 10} seconds`;
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
