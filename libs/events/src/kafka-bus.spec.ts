import { Kafka, logLevel } from 'kafkajs';
import { KafkaForSuite, provideKafka } from '@dsu/testing';
import { KafkaBus } from './kafka-bus';
import { CloudEvent, createEvent } from './envelope';

// Smoke test of the real broker: runs against KAFKA_BROKERS, a container, or tools/kafka.
describe('KafkaBus on a real broker', () => {
  let kafka: KafkaForSuite;
  beforeAll(async () => {
    kafka = await provideKafka('events');
  }, 180_000);
  afterAll(async () => kafka?.cleanup(), 60_000);

  const bus = (id: string) => new KafkaBus({ brokers: kafka.brokers, clientId: id, partitions: 2, logLevel: logLevel.NOTHING });
  const ev = (n: number) => createEvent({ type: 'dsu.build.requested.v1', source: 'test', data: { n } });
  const waitFor = async (cond: () => boolean, ms = 30_000) => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error('timed out waiting for messages');
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  it('replaces a consumer that kafkajs would leave dead after an error it does not retry', async () => {
    const topic = `${kafka.topicPrefix}.crash`;
    const producer = bus('crash-producer');
    await producer.publish(topic, ev(7), 'prog-c');
    const got: number[] = [];
    let first = true;
    const c = bus('crash-consumer');
    await c.subscribe({
      group: `${kafka.topicPrefix}.crash-group`,
      topics: [topic],
      // Not an InvalidEventError: it escapes the delivery and crashes the kafkajs consumer.
      validate: () => {
        if (first) throw ((first = false), new TypeError('a bug in a validator'));
      },
      handler: async (e: CloudEvent) => void got.push((e.data as { n: number }).n),
    });
    await waitFor(() => got.length === 1, 60_000);
    expect(got).toEqual([7]);
    await c.close();
    await producer.close();
  }, 90_000);

  it('creates topics, and a restarted consumer group resumes after its last committed offset', async () => {
    const topic = `${kafka.topicPrefix}.builds`;
    const group = `${kafka.topicPrefix}.group`;
    const producer = bus('producer');
    for (let i = 0; i < 3; i++) await producer.publish(topic, ev(i), 'prog-a');

    const first: number[] = [];
    const c1 = bus('consumer-1');
    await c1.subscribe({ group, topics: [topic], handler: async (e: CloudEvent) => void first.push((e.data as { n: number }).n) });
    await waitFor(() => first.length === 3);
    await c1.close();
    expect(first).toEqual([0, 1, 2]);

    // Offsets were committed by the group: check them through the admin API, as an operator would.
    const admin = new Kafka({ clientId: 'check', brokers: kafka.brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    const [{ partitions }] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    await admin.disconnect();
    expect(partitions).toHaveLength(2); // the topic was created with the configured partition count
    expect(partitions.reduce((s, p) => s + Math.max(0, Number(p.offset)), 0)).toBe(3);

    for (let i = 3; i < 5; i++) await producer.publish(topic, ev(i), 'prog-a');
    const second: number[] = [];
    const c2 = bus('consumer-2');
    await c2.subscribe({ group, topics: [topic], handler: async (e: CloudEvent) => void second.push((e.data as { n: number }).n) });
    await waitFor(() => second.length >= 2);
    await new Promise((r) => setTimeout(r, 500)); // anything re-delivered would show up here
    await c2.close();
    await producer.close();
    expect(second).toEqual([3, 4]);
  }, 120_000);

  it('reports a group\'s lag per topic (what it has not handled yet) and whether the brokers answer', async () => {
    const topic = `${kafka.topicPrefix}.lagging`;
    const group = `${kafka.topicPrefix}.lag-group`;
    const producer = bus('lag-producer');
    for (let i = 0; i < 5; i++) await producer.publish(topic, ev(i), `prog-${i % 2}`);
    const got: number[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const c = bus('lag-consumer');
    await expect(c.checkReachable()).resolves.toBeUndefined();
    await c.subscribe({
      group,
      topics: [topic],
      handler: async (e: CloudEvent) => {
        await gate; // holds the group back until the lag was read
        got.push((e.data as { n: number }).n);
      },
    });
    // Nothing committed yet: every message counts (at least those not yet taken in hand).
    const before = await c.lag();
    expect(before).toEqual([{ group, topic, lag: expect.any(Number) }]);
    expect(before[0].lag).toBeGreaterThanOrEqual(4);
    release();
    await waitFor(() => got.length === 5);
    const end = Date.now() + 30_000;
    while ((await c.lag())[0].lag !== 0) {
      if (Date.now() > end) throw new Error('lag never reached 0 after every message was handled');
      await new Promise((r) => setTimeout(r, 100));
    }
    await c.close();
    await producer.close();
    // A broker that is not there: readiness says so within its timeout instead of hanging.
    const nowhere = new KafkaBus({ brokers: ['127.0.0.1:1'], clientId: 'nowhere', logLevel: logLevel.NOTHING });
    await expect(nowhere.checkReachable(1_500)).rejects.toThrow(/Kafka|ECONNREFUSED|Connection/i);
    await nowhere.close();
  }, 90_000);

  it('sends a malformed message to the dead-letter topic and keeps consuming', async () => {
    const topic = `${kafka.topicPrefix}.mixed`;
    const producer = bus('producer-2');
    await producer.publishRaw(topic, Buffer.from('{"specversion":"1.0"}'), 'prog-b');
    await producer.publish(topic, ev(7), 'prog-b');
    const seen: number[] = [];
    const letters: string[] = [];
    const consumer = bus('consumer-3');
    await consumer.subscribe({ group: `${kafka.topicPrefix}.g2`, topics: [topic], handler: async (e) => void seen.push((e.data as { n: number }).n) });
    // Read the dead-letter topic raw: its records are not CloudEvents.
    const raw = new Kafka({ clientId: 'dlq', brokers: kafka.brokers, logLevel: logLevel.NOTHING }).consumer({ groupId: `${kafka.topicPrefix}.raw` });
    await raw.connect();
    await raw.subscribe({ topic: 'dsu.dead-letter', fromBeginning: true });
    await raw.run({ eachMessage: async ({ message }) => void letters.push(message.value?.toString() ?? '') });
    await waitFor(() => seen.length === 1 && letters.some((l) => l.includes(topic)));
    await raw.disconnect();
    await consumer.close();
    await producer.close();
    expect(seen).toEqual([7]);
    const letter = JSON.parse(letters.find((l) => l.includes(topic)) as string);
    expect(letter).toMatchObject({ topic, key: 'prog-b', error: expect.stringMatching(/required property 'id'/) });
  }, 120_000);
});
