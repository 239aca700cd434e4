import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { type CloudEvent, InProcessBus, Topics } from '@dsu/events';
import { openDatabase, OutboxEntity, ProgramEntity } from '@dsu/persistence';
import { Outbox } from './outbox';

describe('Outbox (SQLite, in-process bus)', () => {
  let dir: string;
  let ds: DataSource;
  let bus: InProcessBus;
  const seen: CloudEvent[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dsu-outbox-'));
    ds = await openDatabase({ sqlitePath: join(dir, 'dsu.sqlite') });
    bus = new InProcessBus();
    seen.length = 0;
    await bus.subscribe({
      group: 'g',
      topics: [Topics.rolloutRequested],
      handler: async (e) => void seen.push(e),
    });
  });
  afterEach(async () => {
    await bus.close();
    await ds.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('publishes an event only when its transaction commits, in order, and marks it sent', async () => {
    const outbox = new Outbox(ds, 'test', bus);
    outbox.start(60_000);
    await outbox.transact(async (tx) => {
      await tx.em.insert(ProgramEntity, { id: 'p', description: '' });
      tx.emit(Topics.rolloutRequested, 'p', { rolloutId: 'r1', program: 'p', version: 'v1' });
      tx.emit(Topics.rolloutRequested, 'p', { rolloutId: 'r2', program: 'p', version: 'v1' });
    });
    await expect(
      outbox.transact(async (tx) => {
        tx.emit(Topics.rolloutRequested, 'p', { rolloutId: 'lost', program: 'p', version: 'v1' });
        await tx.em.insert(ProgramEntity, {
          id: 'p',
          description: 'duplicate key: the transaction rolls back',
        });
      }),
    ).rejects.toThrow();
    await outbox.flush();
    await outbox.stop();
    await bus.close();
    expect(seen.map((e) => (e.data as { rolloutId: string }).rolloutId)).toEqual(['r1', 'r2']);
    expect(seen[0]).toMatchObject({ type: 'dsu.rollout.requested.v1', source: 'test', subject: 'p' });
    expect(await ds.getRepository(OutboxEntity).find()).toEqual([
      expect.objectContaining({ sentAt: expect.any(String) }),
      expect.objectContaining({ sentAt: expect.any(String) }),
    ]);
  });

  it('publishes rows committed before a crash when a new relay starts', async () => {
    const crashed = new Outbox(ds, 'svc', bus); // never started: as if the process died after the commit
    await crashed.transact(
      async (tx) =>
        void tx.emit(Topics.rolloutRequested, 'p', { rolloutId: 'r1', program: 'p', version: 'v1' }),
    );
    expect(seen).toHaveLength(0);
    const restarted = new Outbox(ds, 'svc', bus);
    restarted.start(60_000);
    await restarted.flush();
    await restarted.stop();
    await bus.close();
    expect(seen.map((e) => (e.data as { rolloutId: string }).rolloutId)).toEqual(['r1']);
  });

  it('on the in-process bus, keeps an event until every consumer handled it, so a kill -9 mid-handling redelivers it', async () => {
    // The first "process": its consumer is in the middle of the event when the process dies.
    const dying = new InProcessBus();
    let entered!: () => void;
    const inHandler = new Promise<void>((r) => (entered = r));
    await dying.subscribe({
      group: 'g',
      topics: [Topics.rolloutRequested],
      handler: () => (entered(), new Promise<void>(() => undefined)),
    });
    const first = new Outbox(ds, 'svc', dying);
    first.start(60_000);
    const event = await first.transact(async (tx) =>
      tx.emit(Topics.rolloutRequested, 'p', { rolloutId: 'r1', program: 'p', version: 'v1' }),
    );
    await inHandler;
    await first.flush();
    expect(await ds.getRepository(OutboxEntity).findOneBy({ id: event.id })).toMatchObject({ sentAt: null });
    void first.stop(); // never settles: its handler hangs, as a killed process's would

    // The restarted process publishes it again; its consumer handles it, and only then is it sent.
    const restarted = new Outbox(ds, 'svc', bus);
    restarted.start(60_000);
    await restarted.flush();
    await restarted.stop();
    expect(seen.map((e) => e.id)).toEqual([event.id]);
    expect(await ds.getRepository(OutboxEntity).findOneBy({ id: event.id })).toMatchObject({
      sentAt: expect.any(String),
    });
  });

  it('handles an event once per consumer; a redelivery is skipped', async () => {
    const outbox = new Outbox(ds, 'svc', bus);
    const event = { id: 'evt-1', type: 'dsu.rollout.requested.v1' } as CloudEvent;
    let runs = 0;
    expect(await outbox.once('c', event, async () => void runs++)).toBe(true);
    expect(await outbox.once('c', event, async () => void runs++)).toBe(false);
    expect(await outbox.seen('c', event)).toBe(true);
    expect(await outbox.once('other', event, async () => void runs++)).toBe(true);
    expect(runs).toBe(2);
  });

  it('does not record the event as processed when the handler fails, so a retry runs it', async () => {
    const outbox = new Outbox(ds, 'svc', bus);
    const event = { id: 'evt-2', type: 'dsu.rollout.requested.v1' } as CloudEvent;
    await expect(outbox.once('c', event, async () => Promise.reject(new Error('boom')))).rejects.toThrow(
      'boom',
    );
    expect(await outbox.seen('c', event)).toBe(false);
  });
});
