import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { type CloudEvent, createEvent, InProcessBus } from '@dsu/events';
import { currentTraceparent, inSpan, tracedSubscription } from './spans';
import { startTracing, type Tracing } from './tracing';

describe('traces across the bus (real in-process bus, in-memory exporter)', () => {
  const exporter = new InMemorySpanExporter();
  let tracing: Tracing;
  beforeAll(() => {
    tracing = startTracing('dsu-test', {}, exporter) as Tracing;
  });
  afterAll(() => tracing.shutdown());
  beforeEach(() => exporter.reset());
  const spans = async (): Promise<ReadableSpan[]> => {
    await tracing.flush();
    return exporter.getFinishedSpans();
  };
  const ev = (type: string) => createEvent({ type, source: 'test', data: {} });

  it('continues one trace from a root span through a consumer that emits the next event', async () => {
    const bus = new InProcessBus();
    const emitted: CloudEvent[] = [];
    await bus.subscribe(
      tracedSubscription(
        {
          group: 'dsu.compiler',
          topics: ['dsu.build.requested'],
          handler: async () => {
            const next = ev('dsu.build.completed.v1');
            emitted.push(next);
            await bus.publish('dsu.build.completed', next, 'app');
          },
        },
        'compiler',
      ),
    );
    await bus.subscribe(
      tracedSubscription({ group: 'dsu.gateway', topics: ['dsu.build.completed'], handler: async () => undefined }, 'gateway'),
    );
    let parent = '';
    const first = await inSpan('dsu submit', { 'dsu.program': 'app' }, async () => {
      parent = currentTraceparent() as string;
      return ev('dsu.build.requested.v1');
    });
    expect(first.traceparent).toBe(parent);
    await (await bus.publishTracked('dsu.build.requested', first, 'app')).handled;
    await bus.close();

    const all = await spans();
    const byName = (n: string) => all.find((s) => s.name === n) as ReadableSpan;
    const root = byName('dsu submit');
    const build = byName('dsu.build.requested process');
    const done = byName('dsu.build.completed process');
    const traceId = root.spanContext().traceId;
    expect(all.map((s) => s.spanContext().traceId)).toEqual([traceId, traceId, traceId]);
    expect(build.parentSpanContext?.spanId).toBe(root.spanContext().spanId);
    expect(done.parentSpanContext?.spanId).toBe(build.spanContext().spanId);
    expect(build.kind).toBe(SpanKind.CONSUMER);
    expect(build.attributes).toMatchObject({
      'dsu.service': 'compiler',
      'messaging.destination.name': 'dsu.build.requested',
      'messaging.consumer.group.name': 'dsu.compiler',
      'cloudevents.event_id': first.id,
    });
    expect(emitted[0].traceparent).toContain(build.spanContext().spanId);
    expect(root.resource.attributes['service.name']).toBe('dsu-test');
  });

  it('continues a stored traceparent (a rollout joins its version), and marks a failing handler', async () => {
    let stored = '';
    await inSpan('dsu submit', {}, async () => void (stored = currentTraceparent() as string));
    const bus = new InProcessBus();
    await bus.subscribe(
      tracedSubscription(
        {
          group: 'dsu.applier.h1',
          topics: ['dsu.update.command'],
          handler: async () => {
            throw new Error('control socket gone');
          },
        },
        'applier',
      ),
    );
    const cmd = await inSpan('dsu rollout', {}, async () => ev('dsu.update.command.v1'), stored);
    await (await bus.publishTracked('dsu.update.command', cmd, 'h1')).handled;
    await bus.close();
    const all = await spans();
    const traceIds = new Set(all.map((s) => s.spanContext().traceId));
    expect(traceIds.size).toBe(1); // submit, rollout and the three failed attempts
    const failed = all.filter((s) => s.name === 'dsu.update.command process');
    expect(failed).toHaveLength(3);
    expect(failed[0].status).toEqual({ code: SpanStatusCode.ERROR, message: 'control socket gone' });
    expect(failed[0].events.map((e) => e.name)).toContain('exception');
  });

  it('handles events without a trace context, or with a malformed one, without a span', async () => {
    const bus = new InProcessBus();
    let handled = 0;
    await bus.subscribe(
      tracedSubscription({ group: 'dsu.gateway', topics: ['dsu.agent.heartbeat'], handler: async () => void handled++ }, 'gateway'),
    );
    const plain = ev('dsu.agent.heartbeat.v1');
    expect(plain).not.toHaveProperty('traceparent'); // no active span: nothing to carry
    const forged = { ...plain, id: 'x2', traceparent: '00-not-a-trace-01' };
    await (await bus.publishTracked('dsu.agent.heartbeat', plain, 'h')).handled;
    await (await bus.publishTracked('dsu.agent.heartbeat', forged, 'h')).handled;
    await bus.close();
    expect(handled).toBe(2);
    expect(await spans()).toEqual([]);
  });
});
