import { Admin, Kafka, logLevel } from 'kafkajs';
import { containerRuntimeAvailable } from './container-runtime';
import { runLauncher } from './launcher';
import { SharedServer } from './shared-server';

const launched = new SharedServer(() => runLauncher('kafka', 'KAFKA_BROKERS'));
import { uniqueName } from './unique-name';

export interface KafkaForSuite {
  brokers: string[];
  /** Where the broker came from: the environment, a container, or tools/kafka. */
  source: 'env' | 'testcontainers' | 'local-launcher';
  /** Prefix unique to this suite; name every topic `${topicPrefix}.<name>` so suites never collide. */
  topicPrefix: string;
  /** Deletes the suite's topics and stops a broker the helper started itself. */
  cleanup(): Promise<void>;
}

async function deleteTopics(admin: Admin, prefix: string): Promise<void> {
  const mine = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
  if (mine.length > 0) await admin.deleteTopics({ topics: mine, timeout: 10000 });
}

/**
 * Hands a test suite a real Kafka broker: `KAFKA_BROKERS` when set; otherwise a Testcontainers
 * broker when a container runtime answers; otherwise one started by `tools/kafka/start`.
 */
export async function provideKafka(suite: string): Promise<KafkaForSuite> {
  const topicPrefix = uniqueName(suite);
  let brokers: string[];
  let source: KafkaForSuite['source'];
  let stopServer: () => Promise<void> = async () => undefined;

  if (process.env.KAFKA_BROKERS) {
    brokers = process.env.KAFKA_BROKERS.split(',');
    source = 'env';
  } else if (await containerRuntimeAvailable()) {
    const { KafkaContainer } = await import('@testcontainers/kafka');
    const container = await new KafkaContainer('confluentinc/cp-kafka:7.9.0').withKraft().start();
    brokers = [`${container.getHost()}:${container.getMappedPort(9093)}`];
    source = 'testcontainers';
    stopServer = async () => void (await container.stop());
  } else {
    const server = await launched.acquire();
    brokers = server.value.split(',');
    source = 'local-launcher';
    stopServer = () => launched.release();
  }

  return {
    brokers,
    source,
    topicPrefix,
    cleanup: async () => {
      const admin = new Kafka({ clientId: 'dsu-test-cleanup', brokers, logLevel: logLevel.NOTHING }).admin();
      try {
        await admin.connect();
        await deleteTopics(admin, topicPrefix);
      } finally {
        await admin.disconnect();
        await stopServer();
      }
    },
  };
}
