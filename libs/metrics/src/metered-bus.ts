import { type CloudEvent, type EventBus, type Subscription, Topics } from '@dsu/events';
import type { PipelineMetrics } from './pipeline-metrics';

/** A pipeline stage whose duration is the handling time of one consumer's event. */
export type Stage = 'build' | 'patch' | 'check';

/**
 * The bus as a producer sees it, counting what it publishes (and observing the appliers' update
 * results: applies by outcome, pause times). Subscriptions and the rest go to `bus` unchanged;
 * `publishTracked` exists exactly when `bus` has it, since the outbox chooses its delivery
 * contract by that.
 */
export function meteredPublisher(bus: EventBus, metrics: PipelineMetrics): EventBus {
  const count = (topic: string, event: CloudEvent) => {
    metrics.eventsProduced.inc({ topic });
    if (topic === Topics.updateResult) observeResults(event.data, metrics);
  };
  const out: EventBus = {
    publish: async (topic, event, key) => {
      await bus.publish(topic, event, key);
      count(topic, event);
    },
    subscribe: (sub) => bus.subscribe(sub),
    close: () => bus.close(),
  };
  const tracked = bus.publishTracked?.bind(bus);
  if (tracked)
    out.publishTracked = async (topic, event, key) => {
      const r = await tracked(topic, event, key);
      count(topic, event);
      return r;
    };
  return out;
}

/**
 * The subscription, timed and counted: each event handled or dead-lettered, each failed attempt,
 * the handling time (and, for the stage a service runs, that stage's duration).
 */
export function meteredSubscription(
  sub: Subscription,
  metrics: PipelineMetrics,
  stage?: Stage,
): Subscription {
  const { group } = sub;
  return {
    ...sub,
    handler: async (event, topic) => {
      const started = process.hrtime.bigint();
      const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
      try {
        await sub.handler(event, topic);
      } catch (err) {
        metrics.handlerErrors.inc({ topic, group });
        if (stage) metrics.stageSeconds.observe({ stage, outcome: 'error' }, seconds());
        throw err;
      }
      metrics.eventsConsumed.inc({ topic, group, outcome: 'handled' });
      metrics.handlerSeconds.observe({ topic, group }, seconds());
      if (stage) metrics.stageSeconds.observe({ stage, outcome: 'ok' }, seconds());
    },
    onDeadLetter: (letter) => {
      metrics.deadLettered.inc({ topic: letter.topic, group });
      metrics.eventsConsumed.inc({ topic: letter.topic, group, outcome: 'dead_lettered' });
      sub.onDeadLetter?.(letter);
    },
  };
}

/** Applies and pauses from an update-result payload (one result, or a batch of them). */
function observeResults(data: unknown, metrics: PipelineMetrics): void {
  const d = data as { results?: unknown[] } | null;
  const results = Array.isArray(d?.results) ? d.results : [data];
  for (const r of results) {
    const { outcome, pauseUs, instances } = (r ?? {}) as {
      outcome?: unknown;
      pauseUs?: unknown;
      instances?: unknown;
    };
    if (typeof outcome !== 'string') continue;
    metrics.applies.inc({ outcome });
    // A process idle in a wrapped blocking call can be updated without pausing anything: 0 counts.
    if (outcome === 'applied' && typeof pauseUs === 'number' && pauseUs >= 0)
      metrics.pauseSeconds.observe({ outcome }, pauseUs / 1e6);
    if (outcome === 'applied' && typeof instances === 'number' && instances >= 0)
      metrics.instancesTransformed.observe(instances);
  }
}
