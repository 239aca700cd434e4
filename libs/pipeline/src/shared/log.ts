import type { Log } from '@dsu/outbox';

/** Structured logs: one JSON object per line on stderr, with the service name. */
export function jsonLog(service: string, quiet = false): Log {
  return (level, msg, fields = {}) => {
    if (quiet && level === 'info') return;
    process.stderr.write(
      JSON.stringify({ time: new Date().toISOString(), level, service, msg, ...fields }) + '\n',
    );
  };
}
