import { logLevel } from 'kafkajs';
import { type KafkaForSuite, provideKafka } from '@dsu/testing';
import { KafkaBus } from './kafka-bus';
import { type CloudEvent, createEvent } from './envelope';

// A handler that runs longer than the consumer session timeout (a build of several minutes)
// keeps its group membership: the bus heartbeats while it runs, so the consumer neither crashes
// nor gets the message redelivered to someone else. Real broker (KAFKA_BROKERS, container or tools/kafka).
describe('KafkaBus with a handler longer than the session timeout', () => {
  let kafka: KafkaForSuite;
  beforeAll(async () => {
    kafka = await provideKafka('events-long');
  }, 180_000);
  afterAll(async () => kafka?.cleanup(), 60_000);

  it('heartbeats during the handler, so the consumer goes on with the next message', async () => {
    const topic = `${kafka.topicPrefix}.long`;
    const opts = {
      brokers: kafka.brokers,
      partitions: 1,
      logLevel: logLevel.NOTHING,
      sessionTimeoutMs: 6000,
    };
    const producer = new KafkaBus({ ...opts, clientId: 'producer' });
    const consumer = new KafkaBus({ ...opts, clientId: 'consumer' });
    const ev = (n: number) => createEvent({ type: 'dsu.build.requested.v1', source: 'test', data: { n } });
    const done: number[] = [];
    const started: number[] = [];
    try {
      await consumer.subscribe({
        group: `${kafka.topicPrefix}.group`,
        topics: [topic],
        handler: async (e: CloudEvent) => {
          const n = (e.data as { n: number }).n;
          started.push(n);
          if (n === 0) await new Promise((r) => setTimeout(r, 15_000)); // 2.5 session timeouts
          done.push(n);
        },
      });
      await producer.publish(topic, ev(0), 'p');
      await producer.publish(topic, ev(1), 'p');
      const end = Date.now() + 60_000;
      while (done.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
      expect(done).toEqual([0, 1]);
      expect(started).toEqual([0, 1]); // handled once each: no eviction, no redelivery
    } finally {
      await consumer.close();
      await producer.close();
    }
  }, 120_000);
});
