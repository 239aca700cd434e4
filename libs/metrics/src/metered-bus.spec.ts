import { createEvent, InProcessBus, Topics } from '@dsu/events';
import { meteredPublisher, meteredSubscription } from './metered-bus';
import { PipelineMetrics } from './pipeline-metrics';

/** The value of one series in the exposition text, or undefined when the series is absent. */
async function sample(m: PipelineMetrics, series: string): Promise<number | undefined> {
  const line = (await m.exposition()).body.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const result = (pid: number, outcome: string, pauseUs: number) => ({
  rolloutId: 'r1',
  host: 'h1',
  pid,
  program: 'app',
  patchId: 'p1',
  outcome,
  pauseUs,
  updatePoint: outcome === 'applied' ? 'loop' : null,
  reasons: [],
  buildId: null,
});

describe('meteredPublisher / meteredSubscription on a real in-process bus', () => {
  let bus: InProcessBus;
  let metrics: PipelineMetrics;
  beforeEach(() => {
    bus = new InProcessBus();
    metrics = new PipelineMetrics({ defaultMetrics: false });
  });
  afterEach(() => bus.close());

  it('counts produced and handled events per topic and group, and times the stage', async () => {
    const handled: string[] = [];
    await bus.subscribe(
      meteredSubscription(
        {
          group: 'dsu.compiler',
          topics: [Topics.buildRequested],
          handler: async (e) => void handled.push(e.id),
        },
        metrics,
        'build',
      ),
    );
    const pub = meteredPublisher(bus, metrics);
    expect(typeof pub.publishTracked).toBe('function'); // the outbox keeps its durable contract
    for (let i = 0; i < 3; i++) {
      const { handled: done } = await pub.publishTracked!(
        Topics.buildRequested,
        createEvent({ type: 'dsu.build.requested.v1', source: 't', data: { i } }),
        'app',
      );
      await done;
    }
    expect(handled).toHaveLength(3);
    expect(await sample(metrics, `dsu_events_produced_total{topic="${Topics.buildRequested}"}`)).toBe(3);
    expect(
      await sample(
        metrics,
        `dsu_events_consumed_total{topic="${Topics.buildRequested}",group="dsu.compiler",outcome="handled"}`,
      ),
    ).toBe(3);
    expect(await sample(metrics, 'dsu_stage_duration_seconds_count{stage="build",outcome="ok"}')).toBe(3);
    // Lag is read from the bus at scrape time: nothing left once handled.
    metrics.addSource('consumerLag', async () =>
      (await bus.lag()).map((l) => ({ labels: { group: l.group, topic: l.topic }, value: l.lag })),
    );
    expect(
      await sample(metrics, `dsu_consumer_lag{group="dsu.compiler",topic="${Topics.buildRequested}"}`),
    ).toBe(0);
  });

  it('counts each failed attempt, then the dead letter, and an invalid event as a dead letter', async () => {
    const letters: string[] = [];
    await bus.subscribe(
      meteredSubscription(
        {
          group: 'dsu.checker',
          topics: [Topics.patchGenerated],
          handler: async () => {
            throw new Error('database down');
          },
          onDeadLetter: (l) => void letters.push(l.error),
        },
        metrics,
        'check',
      ),
    );
    await bus.publishRaw(Topics.patchGenerated, Buffer.from('{"specversion":"1.0"'), 'app');
    const bad = await bus.publishTracked(
      Topics.patchGenerated,
      createEvent({
        type: 'dsu.patch.generated.v1',
        source: 't',
        data: { program: 'app', patchId: 'p' },
      }),
      'app',
    );
    await bad.handled;
    expect(letters).toHaveLength(2); // the service's own dead-letter hook still runs
    const topic = Topics.patchGenerated;
    expect(
      await sample(metrics, `dsu_events_dead_lettered_total{topic="${topic}",group="dsu.checker"}`),
    ).toBe(2);
    expect(
      await sample(
        metrics,
        `dsu_events_consumed_total{topic="${topic}",group="dsu.checker",outcome="dead_lettered"}`,
      ),
    ).toBe(2);
    // The valid one was tried three times; the malformed one never reached the handler.
    expect(
      await sample(metrics, `dsu_event_handler_errors_total{topic="${topic}",group="dsu.checker"}`),
    ).toBe(3);
    expect(
      await sample(
        metrics,
        `dsu_events_consumed_total{topic="${topic}",group="dsu.checker",outcome="handled"}`,
      ),
    ).toBe(undefined);
  });

  it("observes the appliers' results as they are published: applies by outcome, pauses of applied ones", async () => {
    const pub = meteredPublisher(bus, metrics);
    const emit = (data: unknown) =>
      pub.publish(
        Topics.updateResult,
        createEvent({ type: 'dsu.update.result.v1', source: 't', data }),
        'app',
      );
    await emit(result(1, 'applied', 250));
    await emit(result(2, 'applied', 4_000));
    await emit(result(3, 'timeout', 0));
    await emit({
      results: [{ ...result(4, 'applied', 0), instances: 1500, transformUs: 80 }, result(5, 'failed', 0)],
    }); // a batch
    expect(await sample(metrics, 'dsu_applies_total{outcome="applied"}')).toBe(3);
    expect(await sample(metrics, 'dsu_applies_total{outcome="timeout"}')).toBe(1);
    expect(await sample(metrics, 'dsu_applies_total{outcome="failed"}')).toBe(1);
    expect(await sample(metrics, 'dsu_update_pause_seconds_count{outcome="applied"}')).toBe(3);
    expect(await sample(metrics, 'dsu_update_pause_seconds_bucket{le="0.00025",outcome="applied"}')).toBe(2);
    expect(await sample(metrics, 'dsu_update_pause_seconds_sum{outcome="applied"}')).toBeCloseTo(0.00425, 6);
    // Only the data update reported instances: one observation, in the 10,000 bucket.
    expect(await sample(metrics, 'dsu_instances_transformed_count')).toBe(1);
    expect(await sample(metrics, 'dsu_instances_transformed_bucket{le="1000"}')).toBe(0);
    expect(await sample(metrics, 'dsu_instances_transformed_bucket{le="10000"}')).toBe(1);
  });
});

describe('PipelineMetrics scrape-time gauges', () => {
  it('reads every source at scrape, drops a failing one (counted) and forgets removed ones', async () => {
    const metrics = new PipelineMetrics({ defaultMetrics: false });
    let backlog = 4;
    const remove = metrics.addSource('outboxBacklog', async () => [
      { labels: { producer: 'gateway' }, value: backlog },
    ]);
    metrics.addSource('fleetProcesses', async () => {
      throw new Error('database closed');
    });
    expect(await sample(metrics, 'dsu_outbox_backlog{producer="gateway"}')).toBe(4);
    backlog = 0;
    expect(await sample(metrics, 'dsu_outbox_backlog{producer="gateway"}')).toBe(0);
    expect(await sample(metrics, 'dsu_metrics_source_errors_total{source="dsu_fleet_processes"}')).toBe(2);
    remove();
    expect(await sample(metrics, 'dsu_outbox_backlog{producer="gateway"}')).toBeUndefined();
  });

  it('serves the Prometheus text format with process metrics by default', async () => {
    const { contentType, body } = await new PipelineMetrics().exposition();
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(body).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(body).toMatch(/^# TYPE dsu_stage_duration_seconds histogram$/m);
  });
});
