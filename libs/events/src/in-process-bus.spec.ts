import { InProcessBus } from './in-process-bus';
import { CloudEvent, createEvent } from './envelope';
import { Topics } from './topics';

const ev = (n: number) => createEvent({ type: 'dsu.build.requested.v1', source: 'test', data: { n } });

describe('InProcessBus', () => {
  it('delivers every event once to each group, in publish order', async () => {
    const bus = new InProcessBus();
    const a: number[] = [];
    const b: number[] = [];
    await bus.subscribe({ group: 'a', topics: [Topics.buildRequested], handler: async (e) => void a.push((e.data as { n: number }).n) });
    for (let i = 0; i < 5; i++) await bus.publish(Topics.buildRequested, ev(i), 'p');
    // A group that joins late still sees the whole log, like a new Kafka group reading from the beginning.
    await bus.subscribe({ group: 'b', topics: [Topics.buildRequested], handler: async (e) => void b.push((e.data as { n: number }).n) });
    await bus.close();
    expect(a).toEqual([0, 1, 2, 3, 4]);
    expect(b).toEqual([0, 1, 2, 3, 4]);
  });

  it('dead-letters malformed messages and handlers that keep failing, and goes on', async () => {
    const bus = new InProcessBus();
    const seen: CloudEvent[] = [];
    let attempts = 0;
    await bus.subscribe({
      group: 'g',
      topics: [Topics.buildRequested],
      handler: async (e) => {
        if ((e.data as { n: number }).n === 1) {
          attempts++;
          throw new Error('always fails');
        }
        seen.push(e);
      },
    });
    await bus.publishRaw(Topics.buildRequested, Buffer.from('not json'), 'p');
    await bus.publish(Topics.buildRequested, ev(1), 'p');
    await bus.publish(Topics.buildRequested, ev(2), 'p');
    await bus.close();
    expect(seen.map((e) => e.data)).toEqual([{ n: 2 }]);
    expect(attempts).toBe(3);
    const dead = bus.deadLetters();
    expect(dead.map((d) => d.error)).toEqual([expect.stringMatching(/not JSON/), 'always fails']);
    expect(dead[0].payload).toBe('not json');
  });
});

describe('InProcessBus retention', () => {
  it('drops messages every group consumed beyond the retention, and keeps delivering in order', async () => {
    const bus = new InProcessBus(3);
    const got: number[] = [];
    await bus.subscribe({ group: 'a', topics: [Topics.buildRequested], handler: async (e) => void got.push((e.data as { n: number }).n) });
    for (let i = 0; i < 10; i++) await bus.publish(Topics.buildRequested, ev(i), 'p');
    await bus.close();
    expect(got).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const late = new InProcessBus(3);
    for (let i = 0; i < 10; i++) await late.publish(Topics.buildRequested, ev(i), 'p');
    const all: number[] = [];
    // Nobody consumed yet: nothing is dropped, a group subscribing now sees everything.
    await late.subscribe({ group: 'b', topics: [Topics.buildRequested], handler: async (e) => void all.push((e.data as { n: number }).n) });
    await late.close();
    expect(all).toHaveLength(10);
  });
});

describe('InProcessBus.publishTracked', () => {
  it('settles `handled` once every subscribed group handled (or dead-lettered) the event', async () => {
    const bus = new InProcessBus();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    await bus.subscribe({ group: 'fast', topics: [Topics.buildRequested], handler: async () => undefined });
    await bus.subscribe({ group: 'slow', topics: [Topics.buildRequested], handler: () => gate });
    const { handled } = await bus.publishTracked(Topics.buildRequested, ev(1), 'p');
    let settled = false;
    void handled.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toBe(false); // 'fast' handled it, 'slow' has not
    release();
    await handled;
    // No group subscribes to the topic: handled at once.
    await (
      await bus.publishTracked(Topics.patchRequested, ev(2), 'p')
    ).handled;

    const stuck = new InProcessBus();
    await stuck.subscribe({
      group: 'g',
      topics: [Topics.buildRequested],
      handler: async (e) => {
        if ((e.data as { n: number }).n === 1) throw new Error('always fails');
      },
    });
    // A dead-lettered event counts as handled: the producer must not publish it forever.
    await (
      await stuck.publishTracked(Topics.buildRequested, ev(1), 'p')
    ).handled;
    await bus.close();
    await stuck.close();
  });
});
