import { type Admin, Consumer, Kafka, Partitioners, Producer, logLevel } from 'kafkajs';
import { type ConsumerLag, EventBus, Subscription } from './bus';
import { deliver } from './delivery';
import { CloudEvent, serializeEvent } from './envelope';
import { KafkaBusOptions } from './kafka-config';
import { type KafkaStartup, untilTopicsReady } from './kafka-topics';
import { Topics } from './topics';

/**
 * The bus over Apache Kafka. Producer: idempotent, acks from all in-sync replicas, keyed by
 * program (or host) id so one program's events stay ordered. Consumers: one group per
 * service, offsets committed after each message is handled or dead-lettered, so a restarted
 * consumer resumes right after the last handled message.
 */
export class KafkaBus implements EventBus {
  private readonly kafka: Kafka;
  private producer?: Promise<Producer>;
  private readonly consumers: Consumer[] = [];
  private closing = false;
  private readonly knownTopics = new Set<string>();
  /** Group and topics of each subscription, for `lag`. */
  private readonly subscribed = new Map<string, readonly string[]>();
  private admin?: Promise<Admin>;

  /**
   * @param startup how long to keep trying while the brokers are not reachable or the topics not
   * ready (DSU_STARTUP_TIMEOUT_MS, default 10 minutes), and whom to tell meanwhile (readiness).
   */
  constructor(
    private readonly options: KafkaBusOptions,
    private readonly startup: KafkaStartup = {},
  ) {
    this.kafka = new Kafka({
      clientId: options.clientId,
      brokers: options.brokers,
      ssl: options.ssl,
      sasl: options.sasl,
      logLevel: options.logLevel ?? logLevel.WARN,
    });
  }

  /**
   * Creates the topics that do not exist yet (with the configured partitions and replication)
   * and returns once the cluster's metadata shows a leader for every partition of each, so no
   * consumer or producer meets "This server does not host this topic-partition". Services start
   * at the same moment against an empty cluster: a broker not up yet, a topic another service is
   * creating right now, or leaders not yet elected are waited for (and reported), not fatal.
   */
  async ensureTopics(topics: readonly string[]): Promise<void> {
    const missing = topics.filter((t) => !this.knownTopics.has(t));
    if (missing.length === 0) return;
    await untilTopicsReady(this.kafka, missing, this.options, this.startup);
    missing.forEach((t) => this.knownTopics.add(t));
  }

  /** The broker-side name of a pipeline topic (with the configured prefix). */
  topicName(topic: string): string {
    return this.options.topicPrefix ? `${this.options.topicPrefix}.${topic}` : topic;
  }

  private pipelineTopic(name: string): string {
    const p = this.options.topicPrefix;
    return p && name.startsWith(p + '.') ? name.slice(p.length + 1) : name;
  }

  async publish(topic: string, event: CloudEvent, key: string): Promise<void> {
    await this.send(this.topicName(topic), key, serializeEvent(event));
  }

  /** Publishes raw bytes (tools and tests use it to inject malformed messages). */
  async publishRaw(topic: string, value: Buffer, key: string | null = null): Promise<void> {
    await this.send(this.topicName(topic), key, value);
  }

  async subscribe(sub: Subscription): Promise<void> {
    await this.ensureTopics([...sub.topics, Topics.deadLetter].map((t) => this.topicName(t)));
    const consumer = this.kafka.consumer({
      groupId: sub.group,
      ...(this.options.sessionTimeoutMs
        ? {
            sessionTimeout: this.options.sessionTimeoutMs,
            heartbeatInterval: Math.max(500, Math.floor(this.options.sessionTimeoutMs / 5)),
          }
        : {}),
    });
    await consumer.connect();
    for (const topic of sub.topics)
      await consumer.subscribe({ topic: this.topicName(topic), fromBeginning: true });
    this.consumers.push(consumer);
    this.subscribed.set(sub.group, sub.topics);
    this.replaceWhenDead(consumer, sub);
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ topic, partition, message, heartbeat }) => {
        const key = message.key?.toString() ?? null;
        // kafkajs heartbeats only between messages: a handler running longer than the session
        // timeout (a 10-minute build) would get this member evicted and the consumer crashed.
        const beat = setInterval(() => void heartbeat().catch(() => undefined), this.heartbeatEveryMs());
        try {
          await deliver(message.value ?? Buffer.alloc(0), this.pipelineTopic(topic), key, sub, (letter) =>
            this.send(this.topicName(Topics.deadLetter), key, Buffer.from(JSON.stringify(letter))),
          );
        } finally {
          clearInterval(beat);
        }
        await consumer.commitOffsets([
          { topic, partition, offset: (BigInt(message.offset) + 1n).toString() },
        ]);
      },
    });
  }

  /**
   * kafkajs restarts a crashed consumer only after a retriable error; after any other (e.g. an
   * offset commit refused because a busy member was evicted meanwhile) the consumer stays dead and
   * the service would never consume again. Such a consumer is replaced by a new member of its group,
   * which resumes after the last committed offset (a redelivery is deduped by event id).
   */
  private replaceWhenDead(consumer: Consumer, sub: Subscription): void {
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (payload.restart || this.closing) return;
      const at = this.consumers.indexOf(consumer);
      if (at >= 0) this.consumers.splice(at, 1);
      process.stderr.write(
        JSON.stringify({
          time: new Date().toISOString(),
          level: 'error',
          service: this.options.clientId,
          msg: 'Kafka consumer stopped on an error kafkajs does not retry; replacing it',
          group: payload.groupId,
          error: String(payload.error?.message ?? payload.error),
        }) + '\n',
      );
      const retry = () =>
        void this.subscribe(sub).catch(() => (this.closing ? undefined : setTimeout(retry, 2_000).unref()));
      setTimeout(retry, 1_000).unref();
    });
  }

  /**
   * Each subscribed group's lag per topic: the partitions' end offsets minus the group's committed
   * offsets (a partition the group never committed on counts from its start). One admin
   * connection, kept until `close`.
   */
  async lag(): Promise<ConsumerLag[]> {
    const admin = await this.adminClient();
    const out: ConsumerLag[] = [];
    // A topic several groups read (dsu up: patch.generated by the gateway and the checker) is asked once.
    const endsOf = new Map<string, ReturnType<Admin['fetchTopicOffsets']>>();
    for (const [group, topics] of this.subscribed) {
      const names = topics.map((t) => this.topicName(t));
      const committed = await admin.fetchOffsets({ groupId: group, topics: names });
      for (const t of committed) {
        if (!endsOf.has(t.topic)) endsOf.set(t.topic, admin.fetchTopicOffsets(t.topic));
        const ends = await (endsOf.get(t.topic) as ReturnType<Admin['fetchTopicOffsets']>);
        let lag = 0;
        for (const end of ends) {
          const c = Number(t.partitions.find((p) => p.partition === end.partition)?.offset ?? -1);
          lag += Math.max(0, Number(end.high) - (c >= 0 ? c : Number(end.low)));
        }
        out.push({ group, topic: this.pipelineTopic(t.topic), lag });
      }
    }
    return out;
  }

  /** Asks the cluster for its brokers, within `timeoutMs` (readiness: is Kafka there now?). */
  async checkReachable(timeoutMs = 5_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer from the Kafka brokers within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const cluster = await Promise.race([(await Promise.race([this.adminClient(), timeout])).describeCluster(), timeout]);
      if (cluster.brokers.length === 0) throw new Error('the Kafka cluster reports no brokers');
    } finally {
      clearTimeout(timer);
    }
  }

  /** One admin connection for lag and readiness, made on first use and kept until `close`. */
  private adminClient(): Promise<Admin> {
    this.admin ??= (async () => {
      // Few retries: a scrape or a probe should fail fast and be asked again, not hang on its own.
      const admin = this.kafka.admin({ retry: { retries: 1, initialRetryTime: 200 } });
      await admin.connect();
      return admin;
    })().catch((err) => {
      this.admin = undefined;
      throw err;
    });
    return this.admin;
  }

  /** How often a long handler heartbeats: a third of the session timeout (kafkajs default 30 s). */
  private heartbeatEveryMs(): number {
    return Math.max(500, Math.floor((this.options.sessionTimeoutMs ?? 30_000) / 3));
  }

  async close(): Promise<void> {
    this.closing = true;
    // kafkajs' disconnect waits for the running eachMessage to finish before leaving the group.
    await Promise.all(this.consumers.splice(0).map((c) => c.disconnect()));
    const admin = this.admin;
    this.admin = undefined;
    // A connection still being attempted (the brokers are away) is closed when it settles, not awaited.
    if (admin) void admin.then((a) => a.disconnect()).catch(() => undefined);
    const producer = this.producer;
    this.producer = undefined;
    if (producer) await (await producer).disconnect();
  }

  private async send(topic: string, key: string | null, value: Buffer): Promise<void> {
    await this.ensureTopics([topic]);
    this.producer ??= (async () => {
      const producer = this.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        createPartitioner: Partitioners.DefaultPartitioner,
      });
      await producer.connect();
      return producer;
    })();
    await (await this.producer).send({ topic, acks: -1, messages: [{ key, value }] });
  }
}
