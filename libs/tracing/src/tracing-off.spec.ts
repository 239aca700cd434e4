import { createEvent, InProcessBus } from '@dsu/events';
import { currentTraceparent, inSpan, tracedSubscription } from './spans';
import { startTracing, tracesEndpoint } from './tracing';

describe('tracing off (the default)', () => {
  it('stays off without an OTLP endpoint, and events carry no trace context', async () => {
    expect(tracesEndpoint({})).toBeNull();
    expect(tracesEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318/' })).toBe('http://127.0.0.1:4318/v1/traces');
    expect(tracesEndpoint({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/t' })).toBe('http://c:4318/t');
    expect(tracesEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' })).toBeNull();
    expect(tracesEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' })).toBeNull();
    expect(startTracing('dsu-test', {})).toBeNull();

    const bus = new InProcessBus();
    const seen: unknown[] = [];
    await bus.subscribe(
      tracedSubscription({ group: 'g', topics: ['dsu.t'], handler: async (e) => void seen.push(e) }, 'gateway'),
    );
    const event = await inSpan('dsu submit', {}, async () => {
      expect(currentTraceparent()).toBeNull();
      return createEvent({ type: 'dsu.t.v1', source: 's', data: {} });
    });
    expect(event).not.toHaveProperty('traceparent');
    await (await bus.publishTracked('dsu.t', event, 'k')).handled;
    expect(seen).toHaveLength(1);
    await bus.close();
  });
});
