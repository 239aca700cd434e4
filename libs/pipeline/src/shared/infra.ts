import { DataSource } from 'typeorm';
import { DirectoryArtifactStore } from '@dsu/artifacts';
import { type EventBus, InProcessBus, KafkaBus, kafkaOptionsFromEnv } from '@dsu/events';
import { databaseConfigFromEnv, type OnWaiting, openDatabase } from '@dsu/persistence';
import { type PipelineConfig, pipelineConfigFromEnv } from './config';

/** What every service runs on: configuration, database, bus and artifact store. */
export interface PipelineInfra {
  config: PipelineConfig;
  ds: DataSource;
  bus: EventBus;
  store: DirectoryArtifactStore;
  /** `kafka` when KAFKA_BROKERS is set, else the in-process bus (only useful inside one process). */
  transport: 'kafka' | 'in-process';
  database: 'postgres' | 'sqlite';
  /** Consumer group of a service: `<DSU_GROUP_PREFIX or dsu>.<service>`. */
  group(service: string): string;
  close(): Promise<void>;
}

/**
 * Opens database, bus and artifact store from the environment. PostgreSQL and Kafka that are not
 * up yet are waited for, up to `DSU_STARTUP_TIMEOUT_MS` (default 10 minutes), each failed attempt
 * told to `onWaiting` (the service's readiness reports it).
 */
export async function openInfra(
  clientId: string,
  env: NodeJS.ProcessEnv = process.env,
  onWaiting?: OnWaiting,
): Promise<PipelineInfra> {
  const config = pipelineConfigFromEnv(env);
  const kafka = kafkaOptionsFromEnv(env, clientId);
  const startup = { timeoutMs: config.startupTimeoutMs, onWaiting };
  const ds = await openDatabase(databaseConfigFromEnv(env), startup);
  const bus: EventBus = kafka ? new KafkaBus(kafka, startup) : new InProcessBus();
  const prefix = env.DSU_GROUP_PREFIX || 'dsu';
  let closed = false;
  return {
    config,
    ds,
    bus,
    store: new DirectoryArtifactStore(config.artifactsDir),
    transport: kafka ? 'kafka' : 'in-process',
    database: ds.options.type === 'postgres' ? 'postgres' : 'sqlite',
    group: (service) => `${prefix}.${service}`,
    close: async () => {
      if (closed) return;
      closed = true;
      await bus.close();
      await ds.destroy();
    },
  };
}
