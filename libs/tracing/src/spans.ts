import {
  type Attributes,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import type { CloudEvent, Subscription } from '@dsu/events';

const tracer = () => trace.getTracer('dsu');

/** Ends `span` after `fn`, recording a thrown error on it; runs `fn` with `span` active. */
async function within<T>(span: Span, fn: () => Promise<T>): Promise<T> {
  try {
    return await context.with(trace.setSpan(context.active(), span), fn);
  } catch (err) {
    span.recordException(err as Error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
    throw err;
  } finally {
    span.end();
  }
}

/**
 * Runs `fn` in a new span that starts a trace (an operator's action: a submitted version, a
 * rollout), or continues the one `parent` names (a W3C traceparent, e.g. the version's own).
 * Events created inside carry its context. A no-op wrapper while tracing is off.
 */
export function inSpan<T>(
  name: string,
  attributes: Attributes,
  fn: () => Promise<T>,
  parent?: string | null,
): Promise<T> {
  const base = parent ? propagation.extract(ROOT_CONTEXT, { traceparent: parent }) : ROOT_CONTEXT;
  return within(tracer().startSpan(name, { kind: SpanKind.INTERNAL, attributes }, base), fn);
}

/** The active span's W3C traceparent (to store with what it started), or null while tracing is off. */
export function currentTraceparent(): string | null {
  const carrier: { traceparent?: string } = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent ?? null;
}

/**
 * The subscription, traced: an event that carries a trace context is handled in a consumer span
 * of that trace (named after the topic, with the service, event id and type), so what the handler
 * emits continues it. Events without one (heartbeats) are handled as they are, with no span.
 */
export function tracedSubscription(sub: Subscription, service: string): Subscription {
  return {
    ...sub,
    handler: (event: CloudEvent, topic: string) => {
      if (!event.traceparent) return sub.handler(event, topic);
      const parent = propagation.extract(ROOT_CONTEXT, {
        traceparent: event.traceparent,
        ...(event.tracestate ? { tracestate: event.tracestate } : {}),
      });
      // A malformed traceparent extracts to no span: handle the event untraced rather than start a stray trace.
      if (!trace.getSpanContext(parent)) return sub.handler(event, topic);
      const span = tracer().startSpan(
        `${topic} process`,
        {
          kind: SpanKind.CONSUMER,
          attributes: {
            'messaging.system': 'kafka',
            'messaging.operation.type': 'process',
            'messaging.destination.name': topic,
            'messaging.consumer.group.name': sub.group,
            'cloudevents.event_id': event.id,
            'cloudevents.event_type': event.type,
            'dsu.service': service,
            ...(event.subject ? { 'cloudevents.event_subject': event.subject } : {}),
          },
        },
        parent,
      );
      return within(span, () => sub.handler(event, topic));
    },
  };
}
