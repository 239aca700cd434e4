import { trace } from '@opentelemetry/api';
import type { Subscription } from '@dsu/events';
import type { Log } from '@dsu/outbox';

/**
 * Structured logs: one JSON object per line on stderr, with the service name, and inside a
 * traced handler the trace and span ids, so log lines and traces of one version correlate.
 */
export function jsonLog(service: string, quiet = false): Log {
  return (level, msg, fields = {}) => {
    if (quiet && level === 'info') return;
    const span = trace.getActiveSpan()?.spanContext();
    const ids = span ? { traceId: span.traceId, spanId: span.spanId } : {};
    process.stderr.write(
      JSON.stringify({ time: new Date().toISOString(), level, service, msg, ...ids, ...fields }) + '\n',
    );
  };
}

/** Topics too frequent to log per event (every applier's heartbeat, every few seconds). */
const UNLOGGED = new Set(['dsu.agent.heartbeat']);

/**
 * The subscription, logging one line per event handled (or failed attempt) with its correlation
 * ids: event id and type, correlation and causation ids, consumer group, duration.
 */
export function loggedSubscription(sub: Subscription, log: Log): Subscription {
  return {
    ...sub,
    handler: async (event, topic) => {
      if (UNLOGGED.has(topic)) return sub.handler(event, topic);
      const started = Date.now();
      const fields = () => ({
        topic,
        group: sub.group,
        eventId: event.id,
        type: event.type,
        subject: event.subject,
        correlationId: event.correlationid,
        causationId: event.causationid,
        durationMs: Date.now() - started,
      });
      try {
        await sub.handler(event, topic);
      } catch (err) {
        log('warn', 'event handler failed', { ...fields(), error: (err as Error).message });
        throw err;
      }
      log('info', 'event handled', fields());
    },
  };
}
