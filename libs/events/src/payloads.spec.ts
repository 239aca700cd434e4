import { createEvent } from './envelope';
import { InProcessBus } from './in-process-bus';
import { currentType, validatePayload } from './payloads';
import { Topics } from './topics';

const rollout = { rolloutId: 'r1', program: 'p', version: 'v2' };

describe('payload schemas', () => {
  it('accepts a valid payload of a known version', () => {
    expect(() =>
      validatePayload(
        createEvent({ type: currentType(Topics.rolloutRequested), source: 't', data: rollout }),
        Topics.rolloutRequested,
      ),
    ).not.toThrow();
  });

  it('update results go out in batches (v2); a single result (v1) from an older applier stays valid', () => {
    const one = {
      rolloutId: 'r1',
      host: 'h1',
      pid: 10,
      program: 'p',
      patchId: 'P1',
      outcome: 'applied',
      pauseUs: 3,
      updatePoint: 'poll',
      reasons: [],
      buildId: 'b2',
    };
    expect(currentType(Topics.updateResult)).toBe('dsu.update.result.v2');
    const batch = { rolloutId: 'r1', host: 'h1', program: 'p', results: [one, { ...one, pid: 11 }] };
    const ev = (type: string, data: unknown) => createEvent({ type, source: 't', data });
    expect(() => validatePayload(ev('dsu.update.result.v2', batch), Topics.updateResult)).not.toThrow();
    expect(() => validatePayload(ev('dsu.update.result.v1', one), Topics.updateResult)).not.toThrow();
    expect(() => validatePayload(ev('dsu.update.result.v2', { ...batch, results: [] }))).toThrow(
      /results must NOT have fewer than 1 items/,
    );
    expect(() =>
      validatePayload(ev('dsu.update.result.v2', { ...batch, results: [{ ...one, pid: 0 }] })),
    ).toThrow(/results\/0\/pid/);
  });

  it('names the missing field of an invalid payload', () => {
    const e = createEvent({ type: 'dsu.rollout.requested.v1', source: 't', data: { program: 'p' } });
    expect(() => validatePayload(e)).toThrow(/must have required property 'rolloutId'/);
  });

  it('refuses an unknown schema version and says which versions it understands', () => {
    const e = createEvent({ type: 'dsu.rollout.requested.v9', source: 't', data: rollout });
    expect(() => validatePayload(e)).toThrow(
      /understands dsu.rollout.requested.v1 .* not 'dsu.rollout.requested.v9'/,
    );
  });

  it('refuses an event on the wrong topic', () => {
    const e = createEvent({ type: 'dsu.rollout.requested.v1', source: 't', data: rollout });
    expect(() => validatePayload(e, Topics.updateCommand)).toThrow(/belongs on 'dsu.rollout.requested'/);
  });

  it('dead-letters invalid payloads at once (no retries) and the consumer goes on', async () => {
    const bus = new InProcessBus();
    const seen: string[] = [];
    let calls = 0;
    await bus.subscribe({
      group: 'g',
      topics: [Topics.rolloutRequested],
      validate: validatePayload,
      handler: async (e) => {
        calls++;
        seen.push((e.data as { rolloutId: string }).rolloutId);
      },
    });
    await bus.publish(
      Topics.rolloutRequested,
      createEvent({ type: 'dsu.rollout.requested.v2', source: 't', data: rollout }),
      'p',
    );
    await bus.publish(
      Topics.rolloutRequested,
      createEvent({ type: 'dsu.rollout.requested.v1', source: 't', data: { rolloutId: 'x' } }),
      'p',
    );
    await bus.publish(
      Topics.rolloutRequested,
      createEvent({ type: 'dsu.rollout.requested.v1', source: 't', data: rollout }),
      'p',
    );
    await bus.close();
    expect(seen).toEqual(['r1']);
    expect(calls).toBe(1);
    expect(bus.deadLetters().map((d) => d.error)).toEqual([
      expect.stringMatching(/unknown schema version/),
      expect.stringMatching(/payload .* is invalid/),
    ]);
  });
});
