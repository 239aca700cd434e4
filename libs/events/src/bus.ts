import { CloudEvent } from './envelope';

/** Handles one event; throwing makes the bus retry, then dead-letter the event. */
export type EventHandler = (event: CloudEvent, topic: string) => Promise<void>;

export interface Subscription {
  /** Consumer group: every group receives each event once; members of a group share the work. */
  group: string;
  topics: readonly string[];
  handler: EventHandler;
  /**
   * Checks an event before the handler sees it (e.g. `validatePayload`); throwing
   * InvalidEventError sends the event to the dead-letter topic without retries.
   */
  validate?: (event: CloudEvent, topic: string) => void;
  /**
   * Told about each message of this subscription that went to the dead-letter topic (after the
   * retries, or at once when invalid), so the service can log it: a dead letter is never silent.
   */
  onDeadLetter?: (letter: DeadLetter) => void;
}

/**
 * The bus port the services are written against. Implemented over Kafka (kafkajs) and in process
 * (the embedded default), with the same delivery contract: per-key order, at-least-once delivery
 * (consumers dedupe by event id), bounded retries, then the dead-letter topic.
 */
export interface EventBus {
  publish(topic: string, event: CloudEvent, key: string): Promise<void>;
  /**
   * Present only on a bus that holds accepted messages in memory (the in-process bus), where an
   * accepted publish is not yet durable: publishes like `publish` (in order with the others)
   * and returns `handled`, which resolves once every consumer group subscribed to the topic at
   * that moment handled or dead-lettered the event, and rejects if the bus closes first. A
   * producer with a durable copy (the outbox) keeps its copy until then, so a crash (kill -9)
   * redelivers the event on the next start (consumers dedupe by event id).
   */
  publishTracked?(topic: string, event: CloudEvent, key: string): Promise<{ handled: Promise<void> }>;
  subscribe(subscription: Subscription): Promise<void>;
  /**
   * Per consumer group of this bus's subscriptions and topic: messages published but not yet
   * handled (Kafka: the partitions' end offsets minus the group's committed offsets). Read by
   * the metrics scrape; optional for buses that cannot tell.
   */
  lag?(): Promise<ConsumerLag[]>;
  /**
   * Resolves when the broker answers now (readiness probes), rejects with why it does not.
   * Absent on a bus without a broker (in process), which is reachable while the process lives.
   */
  checkReachable?(): Promise<void>;
  /** Stops consuming after in-flight handlers finish, commits offsets, disconnects. */
  close(): Promise<void>;
}

/** How far one consumer group is behind on one topic. */
export interface ConsumerLag {
  group: string;
  topic: string;
  lag: number;
}

export interface DeadLetter {
  topic: string;
  key: string | null;
  error: string;
  group: string;
  payload: string;
  failedAt: string;
}

export const MAX_HANDLER_ATTEMPTS = 3;

/**
 * Runs a handler with bounded retries and returns the last error when every attempt failed.
 * Shared by both bus implementations so their retry contract cannot drift apart.
 */
export async function runWithRetries(
  attempt: () => Promise<void>,
  attempts = MAX_HANDLER_ATTEMPTS,
  backoffMs = 50,
): Promise<Error | undefined> {
  let last: Error | undefined;
  for (let i = 0; i < attempts; i++) {
    try {
      await attempt();
      return undefined;
    } catch (err) {
      last = err instanceof Error ? err : new Error(String(err));
      if (i + 1 < attempts) await new Promise((r) => setTimeout(r, backoffMs * 2 ** i));
    }
  }
  return last;
}
