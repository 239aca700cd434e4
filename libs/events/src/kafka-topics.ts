import type { Admin, Kafka } from 'kafkajs';
import type { KafkaBusOptions } from './kafka-config';

/** How a Kafka client waits for its cluster at start-up. */
export interface KafkaStartup {
  /** Give up after this long; default 10 minutes. */
  timeoutMs?: number;
  /** Told on each failed attempt (the service's readiness says "waiting for Kafka"). */
  onWaiting?: (dependency: 'Kafka', reason: string, attempt: number) => void;
}

/**
 * Makes sure `topics` exist and every partition has a leader, retrying (with a capped backoff)
 * whatever a cluster that is starting, or other services creating the same topics, answers:
 * connection refused, TOPIC_ALREADY_EXISTS, LEADER_NOT_AVAILABLE, NOT_CONTROLLER, metadata not
 * yet showing the topic. Throws after `timeoutMs` with the last reason.
 */
export async function untilTopicsReady(
  kafka: Kafka,
  topics: readonly string[],
  options: KafkaBusOptions,
  startup: KafkaStartup,
): Promise<void> {
  const timeoutMs = startup.timeoutMs ?? 10 * 60_000;
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    const admin = kafka.admin();
    let notReady: string;
    try {
      await admin.connect();
      await createMissing(admin, topics, options);
      const pending = await leaderless(admin, topics);
      if (pending.length === 0) return;
      notReady = `no leader yet for ${pending.slice(0, 5).join(', ')}${pending.length > 5 ? ', ...' : ''}`;
    } catch (err) {
      notReady = String((err as Error).message || err);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    if (Date.now() >= deadline)
      throw new Error(
        `Kafka topics not ready within ${timeoutMs} ms (DSU_STARTUP_TIMEOUT_MS): ${notReady}; check KAFKA_BROKERS and the brokers' logs`,
      );
    startup.onWaiting?.('Kafka', notReady, attempt);
    await new Promise((r) => setTimeout(r, Math.min(3_000, 100 * 2 ** Math.min(attempt, 5))));
  }
}

async function createMissing(
  admin: Admin,
  topics: readonly string[],
  options: KafkaBusOptions,
): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const create = topics.filter((t) => !existing.has(t));
  if (create.length === 0) return;
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: create.map((topic) => ({
        topic,
        numPartitions: options.partitions ?? 3,
        replicationFactor: options.replicationFactor ?? 1,
      })),
    });
  } catch (err) {
    // Another service created it between our list and our create: it exists, which is all we need.
    const type = (err as { type?: string }).type;
    const nested = (err as { errors?: { type?: string }[] }).errors ?? [];
    if (
      type === 'TOPIC_ALREADY_EXISTS' ||
      (nested.length > 0 && nested.every((e) => e.type === 'TOPIC_ALREADY_EXISTS'))
    )
      return;
    throw err;
  }
}

/** `topic/partition` of each partition without a leader (or topics metadata does not show yet). */
async function leaderless(admin: Admin, topics: readonly string[]): Promise<string[]> {
  const { topics: meta } = await admin.fetchTopicMetadata({ topics: [...topics] });
  const out: string[] = [];
  for (const t of topics) {
    const m = meta.find((x) => x.name === t);
    if (!m || m.partitions.length === 0) out.push(`${t} (no metadata)`);
    else for (const p of m.partitions) if (p.leader < 0) out.push(`${t}/${p.partitionId}`);
  }
  return out;
}
