import { type ConsumerLag, DeadLetter, EventBus, Subscription } from './bus';
import { deliver } from './delivery';
import { CloudEvent, serializeEvent } from './envelope';
import { Topics } from './topics';

interface Message {
  key: string | null;
  value: Buffer;
  /** publishTracked: the groups that have yet to handle it, and what to settle when none is left. */
  tracking?: Tracking;
}

interface Tracking {
  pending: Set<GroupState>;
  resolve(): void;
  reject(err: Error): void;
}

interface TopicLog {
  /** Offset of msgs[0]: messages every group has consumed are dropped past the retention. */
  base: number;
  msgs: Message[];
}

interface GroupState {
  sub: Subscription;
  offsets: Map<string, number>;
  draining: Promise<void>;
}

/**
 * The embedded default bus: one process, no broker. Keeps Kafka's contract where the services
 * depend on it: messages are bytes (so serialization bugs show up here too), each consumer group
 * sees every message once in publish order, failures go to the dead-letter topic. Messages live
 * in memory only; durability comes from the producers' outboxes, which publish with
 * `publishTracked` and forget an event only once every group handled it.
 */
export class InProcessBus implements EventBus {
  private readonly logs = new Map<string, TopicLog>();
  private readonly groups: GroupState[] = [];
  private readonly tracked = new Set<Tracking>();
  private closed = false;

  /**
   * @param retain messages kept per topic once every group consumed them (a long-running
   * `dsu up` publishes heartbeats forever); a group subscribing later sees only those.
   */
  constructor(private readonly retain = 10_000) {}

  async publish(topic: string, event: CloudEvent, key: string): Promise<void> {
    this.assertOpen(topic);
    this.append(topic, { key, value: serializeEvent(event) });
  }

  /** See EventBus.publishTracked: `handled` resolves once every subscribed group handled the event. */
  async publishTracked(topic: string, event: CloudEvent, key: string): Promise<{ handled: Promise<void> }> {
    this.assertOpen(topic);
    const pending = new Set(this.groups.filter((g) => g.sub.topics.includes(topic)));
    let tracking: Tracking | undefined;
    const handled = new Promise<void>((resolve, reject) => {
      tracking = { pending, resolve, reject };
    });
    // Settled below or by the consumer; a caller that drops the promise must not crash the process.
    handled.catch(() => undefined);
    const t = tracking as Tracking;
    if (pending.size === 0) t.resolve();
    else this.tracked.add(t);
    this.append(topic, { key, value: serializeEvent(event), tracking: pending.size ? t : undefined });
    return { handled };
  }

  /** Publishes raw bytes, as a misbehaving producer on a shared Kafka could. */
  async publishRaw(topic: string, value: Buffer, key: string | null = null): Promise<void> {
    this.assertOpen(topic);
    this.append(topic, { key, value });
  }

  async subscribe(sub: Subscription): Promise<void> {
    if (this.closed) throw new Error('bus is closed; create a new InProcessBus');
    const state: GroupState = { sub, offsets: new Map(), draining: Promise.resolve() };
    this.groups.push(state);
    for (const t of sub.topics) this.schedule(state, t);
  }

  /** Messages appended to each subscribed topic that the group has not handled yet. */
  async lag(): Promise<ConsumerLag[]> {
    return this.groups.flatMap((g) =>
      g.sub.topics.map((topic) => {
        const log = this.logs.get(topic) ?? { base: 0, msgs: [] };
        return { group: g.sub.group, topic, lag: log.base + log.msgs.length - (g.offsets.get(topic) ?? log.base) };
      }),
    );
  }

  /** Messages that reached the dead-letter topic (for inspection by tools and tests). */
  deadLetters(): DeadLetter[] {
    return (this.logs.get(Topics.deadLetter)?.msgs ?? []).map((m) => JSON.parse(m.value.toString()) as DeadLetter);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.groups.map((g) => g.draining));
    // Whatever is still unhandled stays with its producer (the outbox row stays unsent).
    for (const t of this.tracked)
      t.reject(new Error('the in-process bus closed before every group handled the event'));
    this.tracked.clear();
  }

  private assertOpen(topic: string): void {
    if (this.closed) throw new Error(`cannot publish to ${topic}: the bus is closed`);
  }

  private append(topic: string, msg: Message): void {
    const log = this.logs.get(topic) ?? { base: 0, msgs: [] };
    log.msgs.push(msg);
    this.logs.set(topic, log);
    for (const g of this.groups) if (g.sub.topics.includes(topic)) this.schedule(g, topic);
  }

  private schedule(g: GroupState, topic: string): void {
    g.draining = g.draining.then(() => this.drain(g, topic));
  }

  private async drain(g: GroupState, topic: string): Promise<void> {
    const log = this.logs.get(topic) ?? { base: 0, msgs: [] };
    for (let off = g.offsets.get(topic) ?? log.base; off < log.base + log.msgs.length; off = g.offsets.get(topic) ?? log.base) {
      const msg = log.msgs[off - log.base];
      await deliver(msg.value, topic, msg.key, g.sub, async (letter) =>
        this.append(Topics.deadLetter, { key: msg.key, value: Buffer.from(JSON.stringify(letter)) }),
      );
      g.offsets.set(topic, off + 1);
      this.handledBy(g, msg);
      this.trim(topic, log);
    }
  }

  private handledBy(g: GroupState, msg: Message): void {
    const t = msg.tracking;
    if (!t?.pending.delete(g) || t.pending.size > 0) return;
    msg.tracking = undefined;
    this.tracked.delete(t);
    t.resolve();
  }

  private trim(topic: string, log: TopicLog): void {
    const excess = log.msgs.length - this.retain;
    if (excess <= 0) return;
    const readers = this.groups.filter((x) => x.sub.topics.includes(topic));
    const consumed = Math.min(...readers.map((x) => (x.offsets.get(topic) ?? log.base) - log.base));
    const drop = Math.min(excess, consumed);
    if (drop <= 0) return;
    log.msgs.splice(0, drop);
    log.base += drop;
  }
}
