import { createEvent, InvalidEventError, parseEvent, serializeEvent } from './envelope';
import { parseEventType } from './topics';

describe('CloudEvents envelope', () => {
  it('round-trips an event and keeps correlation through causation', () => {
    const first = createEvent({ type: 'dsu.build.requested.v1', source: 'gateway', subject: 'prog', data: { a: 1 } });
    expect(first.correlationid).toBe(first.id);
    const next = createEvent({ type: 'dsu.build.completed.v1', source: 'compiler', data: {}, causedBy: first });
    expect(next.correlationid).toBe(first.id);
    expect(next.causationid).toBe(first.id);
    expect(parseEvent(serializeEvent(next))).toEqual(next);
  });

  it('rejects non-JSON and envelopes with missing or wrong fields, saying what is wrong', () => {
    expect(() => parseEvent('{nope')).toThrow(/not JSON/);
    const e = createEvent({ type: 'dsu.build.requested.v1', source: 'gateway', data: null });
    const { id: _id, ...noId } = e;
    expect(() => parseEvent(JSON.stringify(noId))).toThrow(/must have required property 'id'/);
    expect(() => parseEvent(JSON.stringify({ ...e, specversion: '0.3' }))).toThrow(InvalidEventError);
    expect(() => parseEvent(JSON.stringify({ ...e, type: 'build.requested' }))).toThrow(/type/);
    expect(() => createEvent({ type: 'dsu.build.requested', source: 'x', data: 1 })).toThrow(/v<N>/);
  });

  it('parses versioned type names', () => {
    expect(parseEventType('dsu.patch.generated.v12')).toEqual({ topic: 'dsu.patch.generated', version: 12 });
    expect(parseEventType('dsu.patch.generated')).toBeUndefined();
  });
});
