/** What a starting service waits for, as its readiness reports it. */
export interface StartupState {
  /** `PostgreSQL` or `Kafka` while not reachable yet; null before the first failed attempt. */
  waitingFor: string | null;
  reason: string | null;
  attempt: number;
  startedAt: number;
}

/**
 * The process's start-up progress (one per process: a service, or `dsu up` with all five):
 * written by the infrastructure's retry loops, read by the start-up probe's `/health`.
 */
export class StartupStatus {
  private state: StartupState = { waitingFor: null, reason: null, attempt: 0, startedAt: Date.now() };

  /** Records a failed attempt to reach `dependency`. */
  waiting(dependency: string, reason: string, attempt: number): void {
    this.state = { ...this.state, waitingFor: dependency, reason, attempt };
  }

  snapshot(): StartupState {
    return { ...this.state };
  }
}

/** This process's start-up status. */
export const startupStatus = new StartupStatus();
