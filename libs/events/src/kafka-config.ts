import { readFileSync } from 'node:fs';
import { KafkaConfig, SASLOptions, logLevel } from 'kafkajs';

export interface KafkaBusOptions {
  brokers: string[];
  clientId: string;
  /** Partitions and replication factor for topics this client creates. */
  partitions?: number;
  replicationFactor?: number;
  /** Prefix of every topic name (`<prefix>.dsu.build.requested`), for a shared cluster's naming rules. */
  topicPrefix?: string;
  /** Consumer session timeout: how soon a crashed member's partitions move to the others. */
  sessionTimeoutMs?: number;
  ssl?: KafkaConfig['ssl'];
  sasl?: SASLOptions;
  logLevel?: logLevel;
}

/**
 * Kafka settings from the environment, named the way a Kafka team expects:
 * KAFKA_BROKERS, KAFKA_CLIENT_ID, KAFKA_TOPIC_PARTITIONS, KAFKA_TOPIC_REPLICATION, KAFKA_TOPIC_PREFIX,
 * KAFKA_SESSION_TIMEOUT_MS,
 * KAFKA_SSL=1 (+ KAFKA_SSL_CA / KAFKA_SSL_CERT / KAFKA_SSL_KEY files),
 * KAFKA_SASL_MECHANISM (plain | scram-sha-256 | scram-sha-512) with KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD.
 */
export function kafkaOptionsFromEnv(
  env: NodeJS.ProcessEnv,
  defaultClientId: string,
): KafkaBusOptions | undefined {
  if (!env.KAFKA_BROKERS) return undefined;
  const file = (name: string) => (env[name] ? readFileSync(env[name] as string, 'utf8') : undefined);
  const ssl =
    env.KAFKA_SSL === '1' || env.KAFKA_SSL === 'true'
      ? env.KAFKA_SSL_CA || env.KAFKA_SSL_CERT
        ? { ca: file('KAFKA_SSL_CA'), cert: file('KAFKA_SSL_CERT'), key: file('KAFKA_SSL_KEY') }
        : true
      : undefined;
  let sasl: SASLOptions | undefined;
  const mechanism = env.KAFKA_SASL_MECHANISM?.toLowerCase();
  if (mechanism) {
    if (mechanism !== 'plain' && mechanism !== 'scram-sha-256' && mechanism !== 'scram-sha-512') {
      throw new Error(
        `KAFKA_SASL_MECHANISM='${mechanism}' is not supported; use plain, scram-sha-256 or scram-sha-512`,
      );
    }
    sasl = {
      mechanism,
      username: env.KAFKA_SASL_USERNAME ?? '',
      password: env.KAFKA_SASL_PASSWORD ?? '',
    } as SASLOptions;
  }
  const int = (name: string, dflt: number) => {
    const v = env[name] === undefined ? dflt : Number(env[name]);
    if (!Number.isInteger(v) || v < 1)
      throw new Error(`${name} must be a positive integer, got '${env[name]}'`);
    return v;
  };
  return {
    brokers: env.KAFKA_BROKERS.split(',').map((b) => b.trim()),
    clientId: env.KAFKA_CLIENT_ID ?? defaultClientId,
    partitions: int('KAFKA_TOPIC_PARTITIONS', 3),
    replicationFactor: int('KAFKA_TOPIC_REPLICATION', 1),
    topicPrefix: env.KAFKA_TOPIC_PREFIX || undefined,
    sessionTimeoutMs: env.KAFKA_SESSION_TIMEOUT_MS ? int('KAFKA_SESSION_TIMEOUT_MS', 30000) : undefined,
    ssl,
    sasl,
  };
}
