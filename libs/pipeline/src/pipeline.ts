import { Outbox, type Log } from '@dsu/outbox';
import { ApplierAgent } from './apply-agent/applier-agent';
import { checkerSubscription } from './check/check-patch';
import { compilerSubscription } from './compile/compile-version';
import { patcherSubscription } from './generate-patch/generate-patch';
import { Registry } from './registry/registry';
import type { PipelineInfra } from './shared/infra';

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
 */
export async function startServices(
  infra: PipelineInfra,
  names: readonly ServiceName[],
  log: Log,
): Promise<RunningServices> {
  const outboxes: Outbox[] = [];
  const outboxFor = (producer: string) => {
    const o = new Outbox(infra.ds, producer, infra.bus, log);
    outboxes.push(o);
    return o;
  };
  const running: RunningServices = { infra, stop: async () => undefined };
  for (const name of names) {
    switch (name) {
      case 'gateway': {
        running.registry = new Registry(infra, outboxFor('gateway'), log);
        await infra.bus.subscribe(running.registry.subscription());
        // Rollouts a stopped gateway left waiting for patches continue from the database.
        await running.registry.resume();
        break;
      }
      case 'compiler':
        await infra.bus.subscribe(compilerSubscription(infra, outboxFor('compiler'), log));
        break;
      case 'patcher':
        await infra.bus.subscribe(patcherSubscription(infra, outboxFor('patcher'), log));
        break;
      case 'checker':
        await infra.bus.subscribe(checkerSubscription(infra, outboxFor('checker'), log));
        break;
      case 'applier': {
        const agent = new ApplierAgent(infra, outboxFor(`applier.${infra.config.hostId}`), log);
        running.applier = agent;
        await infra.bus.subscribe(agent.subscription());
        agent.startHeartbeat();
        break;
      }
    }
  }
  for (const o of outboxes) o.start();
  let stopping: Promise<void> | undefined;
  running.stop = () =>
    (stopping ??= (async () => {
      await running.applier?.stop();
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
