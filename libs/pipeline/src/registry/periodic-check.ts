import type { Log } from '@dsu/outbox';

/** "12 minutes" / "4.5 seconds": how a deadline reads in a reason. */
export function span(ms: number): string {
  return ms >= 60_000 ? `${Math.round(ms / 6_000) / 10} minutes` : `${Math.round(ms / 100) / 10} seconds`;
}

/**
 * Runs a check now and then every quarter of `deadlineMs` (between 50 ms and a minute), one run
 * at a time; a failed run is logged and retried at the next tick. The deadlines of the registry
 * (builds, patch requests, rollouts) use it.
 */
export class PeriodicCheck {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(
    private readonly what: string,
    private readonly check: () => Promise<unknown>,
    private readonly log: Log,
  ) {}

  start(deadlineMs: number): void {
    const every = Math.max(50, Math.min(60_000, Math.floor(deadlineMs / 4)));
    const tick = () => {
      this.running ??= this.check()
        .then(() => undefined)
        .catch((err) => this.log('warn', `${this.what} check failed; will retry`, { error: String(err) }))
        .finally(() => (this.running = undefined));
    };
    this.timer = setInterval(tick, every);
    this.timer.unref();
    tick();
  }

  /** Stops the ticks and waits for a run in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
