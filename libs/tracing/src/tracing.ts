import type { SpanExporter } from '@opentelemetry/sdk-trace-base';

// The SDK (≈100 ms of module loading) is required only when tracing is turned on: a service or a
// CLI command with tracing off loads the API alone, so "off" costs nothing at start-up either.
/* eslint-disable @typescript-eslint/no-require-imports */
const sdk = () => ({
  ...(require('@opentelemetry/core') as typeof import('@opentelemetry/core')),
  ...(require('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http')),
  ...(require('@opentelemetry/resources') as typeof import('@opentelemetry/resources')),
  ...(require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base')),
  ...(require('@opentelemetry/sdk-trace-node') as typeof import('@opentelemetry/sdk-trace-node')),
});
/* eslint-enable @typescript-eslint/no-require-imports */

/** This process's tracing, once started: flush before exit. */
export interface Tracing {
  serviceName: string;
  /** Exports what is buffered now (tests; a service's shutdown calls `shutdown`). */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

let started: Tracing | undefined;

/**
 * The OTLP endpoint for traces from the standard OpenTelemetry variables, or null when tracing
 * is off: no endpoint set, `OTEL_TRACES_EXPORTER=none` or `OTEL_SDK_DISABLED=true`.
 */
export function tracesEndpoint(env: NodeJS.ProcessEnv): string | null {
  if (env.OTEL_SDK_DISABLED === 'true' || env.OTEL_TRACES_EXPORTER === 'none') return null;
  if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT)
    return `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/$/, '')}/v1/traces`;
  return null;
}

/**
 * Turns tracing on for this process when an OTLP endpoint is configured (or `exporter` is given):
 * registers a tracer provider with the service's name, the async-context manager and the W3C
 * trace-context propagator, so `createEvent` stamps `traceparent` and consumers join the trace.
 * Off (returns null) otherwise: then the API stays a no-op and costs nothing. A process has one
 * provider: later calls return the first.
 */
export function startTracing(
  serviceName: string,
  env: NodeJS.ProcessEnv = process.env,
  exporter?: SpanExporter,
): Tracing | null {
  if (started) return started;
  const url = tracesEndpoint(env);
  if (!exporter && !url) return null;
  const {
    BatchSpanProcessor,
    NodeTracerProvider,
    OTLPTraceExporter,
    resourceFromAttributes,
    W3CTraceContextPropagator,
  } = sdk();
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName, 'service.namespace': 'dsu' }),
    spanProcessors: [new BatchSpanProcessor(exporter ?? new OTLPTraceExporter({ url: url as string }))],
  });
  provider.register({ propagator: new W3CTraceContextPropagator() });
  let stopping: Promise<void> | undefined;
  const tracing: Tracing = {
    serviceName,
    flush: () => provider.forceFlush(),
    shutdown: () => (stopping ??= provider.shutdown()),
  };
  started = tracing;
  return tracing;
}

/** Flushes and stops this process's tracing, if it was started (a stopping service's last step). */
export async function stopTracing(): Promise<void> {
  await started?.shutdown();
}
