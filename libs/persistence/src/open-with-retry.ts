import type { DataSource } from 'typeorm';

/** Told while the database cannot be reached yet (the service reports "waiting for PostgreSQL"). */
export type OnWaiting = (dependency: 'PostgreSQL' | 'Kafka', reason: string, attempt: number) => void;

export interface StartupRetry {
  /** Give up after this long (DSU_STARTUP_TIMEOUT_MS); default 10 minutes. */
  timeoutMs?: number;
  onWaiting?: OnWaiting;
}

// Errors of a server that is not there yet, or still starting or recovering: worth waiting for.
// Anything else (bad password, unknown database, SQL error) fails at once with its message.
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  '57P03', // cannot_connect_now: the database system is starting up
  '53300', // too_many_connections
]);

/** True when `err` says PostgreSQL cannot be reached yet, rather than that something is wrong. */
export function isTransientDbError(err: unknown): boolean {
  const e = err as { code?: string; message?: string; errors?: unknown[] };
  if (e?.code && TRANSIENT_CODES.has(e.code)) return true;
  if (Array.isArray(e?.errors) && e.errors.some(isTransientDbError)) return true; // AggregateError (IPv4 + IPv6)
  return /Connection terminated|the database system is (starting up|shutting down)/.test(e?.message ?? '');
}

/**
 * Runs `connect` until it succeeds; transient failures (server not up yet) are retried with a
 * capped backoff, reported through `onWaiting`, until `timeoutMs`; then the last error is thrown
 * with what to check.
 */
export async function untilConnected(
  connect: () => Promise<DataSource>,
  retry: StartupRetry = {},
): Promise<DataSource> {
  const deadline = Date.now() + (retry.timeoutMs ?? 10 * 60_000);
  for (let attempt = 1; ; attempt++) {
    try {
      return await connect();
    } catch (err) {
      if (!isTransientDbError(err)) throw err;
      if (Date.now() >= deadline)
        throw new Error(
          `PostgreSQL did not answer within ${retry.timeoutMs ?? 600_000} ms (DSU_STARTUP_TIMEOUT_MS): ${String(err)}; check DATABASE_URL and that the server is running`,
        );
      retry.onWaiting?.('PostgreSQL', String((err as Error).message || err), attempt);
      await new Promise((r) => setTimeout(r, Math.min(5_000, 100 * 2 ** Math.min(attempt, 6))));
    }
  }
}
