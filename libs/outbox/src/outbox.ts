import { randomUUID } from 'node:crypto';
import { DataSource, EntityManager, In, IsNull, Not } from 'typeorm';
import { type CloudEvent, type EventBus, createEvent, currentType, serializeEvent } from '@dsu/events';
import { OutboxEntity, ProcessedEventEntity } from '@dsu/persistence';

export type Log = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

/** What a transaction body can do: write rows, and emit events that publish only if it commits. */
export interface OutboxTx {
  em: EntityManager;
  /** Queues an event of the topic's current schema version, keyed by program id (commands: host id). */
  emit<T>(
    topic: string,
    key: string,
    data: T,
    opts?: { causedBy?: CloudEvent; subject?: string },
  ): CloudEvent<T>;
}

// better-sqlite3 gives TypeORM one connection, so two interleaved transactions would nest and fail;
// transactions on one SQLite data source therefore run one after the other.
const sqliteLocks = new WeakMap<DataSource, Promise<unknown>>();

/**
 * Runs `fn` in a transaction of `ds`; on SQLite after every other transaction of `ds` that went
 * through here (the outboxes' included). Writes outside an outbox use this, never a bare write.
 */
export async function inTransaction<T>(ds: DataSource, fn: (em: EntityManager) => Promise<T>): Promise<T> {
  if (ds.options.type !== 'better-sqlite3' && ds.options.type !== 'sqlite') return ds.transaction(fn);
  const prev = sqliteLocks.get(ds) ?? Promise.resolve();
  const run = prev.catch(() => undefined).then(() => ds.transaction(fn));
  sqliteLocks.set(
    ds,
    run.catch(() => undefined),
  );
  return run;
}

/**
 * Transactional outbox of one producer (service): database writes and the events describing
 * them commit together; a relay publishes committed events in order and marks them sent. A crash
 * between publish and mark re-publishes, which idempotent consumers (`once`) absorb.
 *
 * On a bus that keeps accepted messages in memory only (the in-process bus of `dsu up`), "sent"
 * means handled by every consumer group, not merely accepted: the row stays unsent until then,
 * so a `kill -9` at any moment loses nothing; the next start publishes it again.
 */
export class Outbox {
  private seq = 0;
  /** Rows published on a tracking bus whose consumers have not all handled them yet. */
  private readonly inFlight = new Map<string, Promise<void>>();
  private flushing: Promise<void> = Promise.resolve();
  private timer?: NodeJS.Timeout;
  // Publishes nothing until start(): a service starts its relay once its bus is ready.
  private stopped = true;

  constructor(
    private readonly ds: DataSource,
    readonly producer: string,
    private readonly bus: EventBus,
    private readonly log: Log = () => undefined,
  ) {}

  /** Runs `fn` in a transaction; events it emits are published after the commit. */
  async transact<T>(fn: (tx: OutboxTx) => Promise<T>): Promise<T> {
    const result = await inTransaction(this.ds, async (em) => {
      // Rows are written after the body succeeded, inside the same transaction: a body that
      // throws leaves no row behind (and no write races the rollback).
      const rows: OutboxEntity[] = [];
      const emit: OutboxTx['emit'] = (topic, key, data, opts) => {
        const event = createEvent({
          type: currentType(topic),
          source: this.producer,
          subject: opts?.subject ?? key,
          data,
          causedBy: opts?.causedBy,
        });
        rows.push(
          em.create(OutboxEntity, {
            id: event.id,
            producer: this.producer,
            topic,
            key,
            event: serializeEvent(event).toString('utf8'),
            seq: this.seq++,
            createdAt: new Date().toISOString(),
            sentAt: null,
          }),
        );
        return event;
      };
      const value = await fn({ em, emit });
      if (rows.length > 0) await em.insert(OutboxEntity, rows);
      return value;
    });
    this.kick();
    return result;
  }

  /** True when `consumer` already handled this event (cheap pre-check before expensive work). */
  async seen(consumer: string, event: CloudEvent): Promise<boolean> {
    return (await this.ds.getRepository(ProcessedEventEntity).countBy({ consumer, eventId: event.id })) > 0;
  }

  /**
   * Idempotent handling: runs `fn` and records the event as processed in one transaction, unless
   * it was processed before (a redelivery). Returns false for a redelivery.
   */
  async once(consumer: string, event: CloudEvent, fn: (tx: OutboxTx) => Promise<void>): Promise<boolean> {
    return this.transact(async (tx) => {
      if ((await tx.em.countBy(ProcessedEventEntity, { consumer, eventId: event.id })) > 0) {
        this.log('info', 'duplicate event skipped', { consumer, eventId: event.id, type: event.type });
        return false;
      }
      await tx.em.insert(ProcessedEventEntity, {
        consumer,
        eventId: event.id,
        type: event.type,
        processedAt: new Date().toISOString(),
      });
      await fn(tx);
      return true;
    });
  }

  /** Starts the relay: publishes after each commit, and polls for rows left by a crash. */
  start(pollMs = 1000): void {
    this.stopped = false;
    this.timer = setInterval(() => this.kick(), pollMs);
    this.timer.unref();
    this.kick();
  }

  /** Publishes what is pending now and waits for it. */
  flush(): Promise<void> {
    this.kick();
    return this.flushing;
  }

  /**
   * Stops polling after the in-flight publish (and, on a tracking bus, once the events out are
   * handled or the bus closed); unsent rows stay for the next start.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.flushing;
    await Promise.all(this.inFlight.values());
  }

  private kick(): void {
    if (this.stopped) return;
    this.flushing = this.flushing
      .then(() => this.publishPending())
      .catch((err) =>
        this.log('warn', 'outbox relay failed; will retry', { producer: this.producer, error: String(err) }),
      );
  }

  private async publishPending(): Promise<void> {
    const repo = this.ds.getRepository(OutboxEntity);
    for (;;) {
      if (this.stopped || !this.ds.isInitialized) return;
      const out = [...this.inFlight.keys()];
      const rows = await repo.find({
        where: { producer: this.producer, sentAt: IsNull(), ...(out.length ? { id: Not(In(out)) } : {}) },
        order: { createdAt: 'ASC', seq: 'ASC' },
        take: 100,
      });
      if (rows.length === 0) return;
      for (const row of rows) {
        const event = JSON.parse(row.event) as CloudEvent;
        if (!this.bus.publishTracked) {
          await this.bus.publish(row.topic, event, row.key);
          await this.markSent(row.id);
          continue;
        }
        // Published in order now; marked sent only once every consumer group handled it.
        const { handled } = await this.bus.publishTracked(row.topic, event, row.key);
        const done = handled
          .then(() => this.markSent(row.id))
          .catch((err) =>
            this.log('info', 'event left unsent for redelivery on the next start', {
              producer: this.producer,
              eventId: row.id,
              reason: String(err),
            }),
          )
          .finally(() => this.inFlight.delete(row.id));
        this.inFlight.set(row.id, done);
      }
    }
  }

  private async markSent(id: string): Promise<void> {
    if (!this.ds.isInitialized) return;
    await inTransaction(this.ds, (em) =>
      em.update(OutboxEntity, { id }, { sentAt: new Date().toISOString() }),
    );
  }
}

export { randomUUID as newId };
