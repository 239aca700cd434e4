import type { DeadLetter, Subscription } from '@dsu/events';
import {
  meteredPublisher,
  meteredSubscription,
  type PipelineMetrics,
  processMetrics,
  type Stage,
} from '@dsu/metrics';
import { Outbox, type Log } from '@dsu/outbox';
import { tracedSubscription } from '@dsu/tracing';
import { ApplierAgent } from './apply-agent/applier-agent';
import { checkerSubscription } from './check/check-patch';
import { compilerSubscription } from './compile/compile-version';
import { patcherSubscription } from './generate-patch/generate-patch';
import { BuildDeadline } from './registry/build-deadline';
import { RequestDeadlines } from './registry/request-deadlines';
import { Registry } from './registry/registry';
import type { PipelineInfra } from './shared/infra';
import { loggedSubscription } from './shared/log';
import { registerMetricSources } from './shared/metrics-sources';

export const SERVICE_NAMES = ['gateway', 'compiler', 'patcher', 'checker', 'applier'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export interface RunningServices {
  infra: PipelineInfra;
  /** Present when the gateway runs in this process. */
  registry?: Registry;
  applier?: ApplierAgent;
  /** Stops consuming after in-flight work, publishes what was committed, closes bus and database. */
  stop(): Promise<void>;
}

/**
 * Starts the named services on one infrastructure: each gets its own outbox (producer) and
 * consumer group. `dsu up` starts all five on the in-process bus; an app starts one over Kafka.
 * What they consume and produce is counted in `metrics` (the process's, served at `/metrics`).
 */
export async function startServices(
  infra: PipelineInfra,
  names: readonly ServiceName[],
  log: Log,
  metrics: PipelineMetrics = processMetrics,
): Promise<RunningServices> {
  const outboxes: Outbox[] = [];
  // Producers publish through a counting view of the bus; infra.bus itself stays as opened.
  const publisher = meteredPublisher(infra.bus, metrics);
  const outboxFor = (producer: string) => {
    const o = new Outbox(infra.ds, producer, publisher, log);
    outboxes.push(o);
    return o;
  };
  const running: RunningServices = { infra, stop: async () => undefined };
  let deadline: BuildDeadline | undefined;
  let requestDeadlines: RequestDeadlines | undefined;
  // Each consumer logs one line per event (and every dead letter), is timed and counted, and
  // handles traced events in a span of their trace.
  const subscribe = (service: ServiceName, sub: Subscription, stage?: Stage) => {
    const logged = loggedSubscription(
      {
        ...sub,
        onDeadLetter: (l: DeadLetter) =>
          log('error', 'event dead-lettered after retries', {
            topic: l.topic,
            group: l.group,
            key: l.key,
            error: l.error,
            eventId: eventIdOf(l.payload),
          }),
      },
      log,
    );
    return infra.bus.subscribe(meteredSubscription(tracedSubscription(logged, service), metrics, stage));
  };
  for (const name of names) {
    switch (name) {
      case 'gateway': {
        const outbox = outboxFor('gateway');
        running.registry = new Registry(infra, outbox, log);
        await subscribe('gateway', running.registry.subscription());
        // Rollouts a stopped gateway left waiting for patches continue from the database.
        await running.registry.resume();
        deadline = new BuildDeadline(infra, outbox, log);
        deadline.start();
        requestDeadlines = new RequestDeadlines(infra, running.registry, log);
        requestDeadlines.start();
        break;
      }
      case 'compiler':
        await subscribe('compiler', compilerSubscription(infra, outboxFor('compiler'), log), 'build');
        break;
      case 'patcher':
        await subscribe('patcher', patcherSubscription(infra, outboxFor('patcher'), log), 'patch');
        break;
      case 'checker':
        await subscribe('checker', checkerSubscription(infra, outboxFor('checker'), log), 'check');
        break;
      case 'applier': {
        // Its heartbeats are published directly: counted through the same view.
        const agent = new ApplierAgent(
          { ...infra, bus: publisher },
          outboxFor(`applier.${infra.config.hostId}`),
          log,
        );
        running.applier = agent;
        await subscribe('applier', agent.subscription());
        agent.startHeartbeat();
        break;
      }
    }
  }
  for (const o of outboxes) o.start();
  const unregister = registerMetricSources(metrics, infra, {
    producers: () => outboxes.map((o) => o.producer),
    fleet: names.includes('gateway'),
  });
  let stopping: Promise<void> | undefined;
  running.stop = () =>
    (stopping ??= (async () => {
      unregister();
      await running.applier?.stop();
      await deadline?.stop();
      await requestDeadlines?.stop();
      await Promise.all(outboxes.map((o) => o.flush()));
      // Closing the bus lets in-flight handlers finish and commits their offsets; rows they
      // committed after the flush above stay in the outbox and are published on the next start.
      await infra.bus.close();
      await Promise.all(outboxes.map((o) => o.stop()));
      await infra.close();
    })());
  if (infra.transport === 'in-process' && names.length < SERVICE_NAMES.length) {
    log(
      'warn',
      'KAFKA_BROKERS is not set: these services use an in-process bus and see no events of services in other processes; set KAFKA_BROKERS, or run all of them with `dsu up`',
      {
        services: names,
      },
    );
  }
  log('info', 'services started', {
    services: names,
    transport: infra.transport,
    database: infra.database,
    host: infra.config.hostId,
  });
  return running;
}

/** The event id inside a dead letter's payload, when it is a parsable event. */
function eventIdOf(payload: string): string | null {
  try {
    const id = (JSON.parse(payload) as { id?: unknown }).id;
    return typeof id === 'string' ? id : null;
  } catch {
    return null;
  }
}
