import {
  createServer as createHttp,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttps } from 'node:https';
import { startupStatus } from './startup-status';
import type { TlsOptions } from './tls';

/** The body of `GET /health` while the service starts (HTTP 503). */
export interface StartingHealth {
  status: 'starting';
  service: string;
  /** e.g. "waiting for PostgreSQL" / "waiting for Kafka" / "starting". */
  detail: string;
  reason: string | null;
  attempt: number;
  uptimeMs: number;
}

/**
 * Listens on the service's port while its modules start (which waits for PostgreSQL and Kafka),
 * so readiness probes get an answer, 503 with what the service waits for, instead of a refused
 * connection; closed right before the service itself listens there.
 */
export async function listenStartupProbe(
  port: number,
  host: string,
  service: string,
  tls?: TlsOptions,
): Promise<{ close(): Promise<void> }> {
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const s = startupStatus.snapshot();
    const detail = s.waitingFor ? `waiting for ${s.waitingFor}` : 'starting';
    const body: StartingHealth | { error: string } =
      req.url?.split('?')[0] === '/health'
        ? {
            status: 'starting',
            service,
            detail,
            reason: s.reason,
            attempt: s.attempt,
            uptimeMs: Date.now() - s.startedAt,
          }
        : { error: `${service} is starting (${detail}); retry in a moment` };
    res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1', connection: 'close' });
    res.end(JSON.stringify(body));
  };
  const server: Server = tls ? createHttps(tls, handle) : createHttp(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
