import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** One gauge sample read at scrape time: label values and the value. */
export interface GaugeSample {
  labels: Record<string, string>;
  value: number;
}

/** A function read at every scrape (a database count, a broker's offsets); may be slow, may fail. */
export type GaugeSource = () => Promise<GaugeSample[]>;

/** The scrape-time gauges: their values come from sources that services register while they run. */
export type ScrapedGauge = 'consumerLag' | 'outboxBacklog' | 'fleetProcesses' | 'heartbeatAge';

/**
 * The pipeline's Prometheus series, in one registry. A process has one (`processMetrics`): a
 * service alone, or `dsu up` with all five, where the `group` / `service` labels tell them apart.
 * Counters and histograms are fed as events flow (see metered-bus.ts); the gauges are read at
 * scrape time from the sources the running services register, so an idle pipeline costs nothing.
 */
export class PipelineMetrics {
  readonly registry = new Registry();
  readonly eventsProduced: Counter<'topic'>;
  readonly eventsConsumed: Counter<'topic' | 'group' | 'outcome'>;
  readonly handlerErrors: Counter<'topic' | 'group'>;
  readonly deadLettered: Counter<'topic' | 'group'>;
  readonly handlerSeconds: Histogram<'topic' | 'group'>;
  readonly stageSeconds: Histogram<'stage' | 'outcome'>;
  readonly applies: Counter<'outcome'>;
  readonly pauseSeconds: Histogram<'outcome'>;
  readonly instancesTransformed: Histogram<never>;
  readonly scrapeErrors: Counter<'source'>;
  private readonly sources = new Map<ScrapedGauge, Set<GaugeSource>>();

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.eventsProduced = new Counter({
      name: 'dsu_events_produced_total',
      help: 'Events published to the bus, per topic (an outbox row published again after a crash counts again)',
      labelNames: ['topic'],
      registers,
    });
    this.eventsConsumed = new Counter({
      name: 'dsu_events_consumed_total',
      help: 'Events a consumer group finished with, per topic: handled, or dead-lettered after its retries',
      labelNames: ['topic', 'group', 'outcome'],
      registers,
    });
    this.handlerErrors = new Counter({
      name: 'dsu_event_handler_errors_total',
      help: 'Handler attempts that threw (each retry counts); the event is retried, then dead-lettered',
      labelNames: ['topic', 'group'],
      registers,
    });
    this.deadLettered = new Counter({
      name: 'dsu_events_dead_lettered_total',
      help: 'Events sent to the dead-letter topic (invalid, or failing every retry), per source topic',
      labelNames: ['topic', 'group'],
      registers,
    });
    this.handlerSeconds = new Histogram({
      name: 'dsu_event_handler_duration_seconds',
      help: 'Time a consumer group spent on one event, retries included',
      labelNames: ['topic', 'group'],
      buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
    this.stageSeconds = new Histogram({
      name: 'dsu_stage_duration_seconds',
      help: 'Duration of a pipeline stage: build (compiler), patch (patcher), check (checker)',
      labelNames: ['stage', 'outcome'],
      buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600],
      registers,
    });
    this.applies = new Counter({
      name: 'dsu_applies_total',
      help: 'Per-process update results reported by the appliers, by outcome',
      labelNames: ['outcome'],
      registers,
    });
    this.pauseSeconds = new Histogram({
      name: 'dsu_update_pause_seconds',
      help: "Time a process's threads were paused for an update, as the appliers report it",
      labelNames: ['outcome'],
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 1],
      registers,
    });
    this.instancesTransformed = new Histogram({
      name: 'dsu_instances_transformed',
      help: 'Instances a data update transformed at its update point, per process updated',
      buckets: [0, 1, 10, 100, 1_000, 10_000, 100_000, 1_000_000],
      registers,
    });
    this.scrapeErrors = new Counter({
      name: 'dsu_metrics_source_errors_total',
      help: 'Scrape-time sources that failed (their series are left out of that scrape)',
      labelNames: ['source'],
      registers,
    });
    this.scrapedGauge(
      'consumerLag',
      'dsu_consumer_lag',
      'Events on a topic not yet handled by a consumer group',
      ['group', 'topic'],
    );
    this.scrapedGauge(
      'outboxBacklog',
      'dsu_outbox_backlog',
      'Committed events of a producer not yet published',
      ['producer'],
    );
    this.scrapedGauge(
      'fleetProcesses',
      'dsu_fleet_processes',
      'Processes per host, program and build, from the last heartbeats',
      ['host', 'program', 'build'],
    );
    this.scrapedGauge(
      'heartbeatAge',
      'dsu_fleet_heartbeat_age_seconds',
      "Seconds since a host's applier last reported",
      ['host'],
    );
  }

  /**
   * Adds a source to a scrape-time gauge; returns its removal (a stopping service removes its
   * sources, so a scrape never queries a closed database).
   */
  addSource(gauge: ScrapedGauge, source: GaugeSource): () => void {
    const set = this.sources.get(gauge) ?? new Set<GaugeSource>();
    set.add(source);
    this.sources.set(gauge, set);
    return () => set.delete(source);
  }

  /** The registry's text exposition (what `GET /metrics` serves). */
  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private scrapedGauge(kind: ScrapedGauge, name: string, help: string, labelNames: string[]): void {
    const sources = () => this.sources.get(kind) ?? [];
    const failed = () => this.scrapeErrors.inc({ source: name });
    new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      // prom-client calls collect with the gauge as `this`.
      async collect() {
        this.reset();
        for (const source of sources()) {
          try {
            for (const s of await source()) this.set(s.labels, s.value);
          } catch {
            failed();
          }
        }
      },
    });
  }
}

/** This process's metrics: every service in it reports here, `GET /metrics` serves them. */
export const processMetrics = new PipelineMetrics();
