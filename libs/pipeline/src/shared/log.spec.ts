import { createEvent, InProcessBus } from '@dsu/events';
import type { Log } from '@dsu/outbox';
import { jsonLog, loggedSubscription } from './log';

describe('structured logs', () => {
  it('writes one JSON object per line with time, level, service and the fields', () => {
    const lines: string[] = [];
    const write = jest
      .spyOn(process.stderr, 'write')
      .mockImplementation((s) => (lines.push(String(s)), true));
    try {
      jsonLog('dsu-compiler')('warn', 'build slow', { program: 'app' });
      jsonLog('dsu-compiler', true)('info', 'quiet drops info');
    } finally {
      write.mockRestore();
    }
    expect(lines).toHaveLength(1);
    expect(lines[0].endsWith('\n')).toBe(true);
    expect(JSON.parse(lines[0])).toEqual({
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      level: 'warn',
      service: 'dsu-compiler',
      msg: 'build slow',
      program: 'app',
    });
  });

  it('logs one line per event handled or failed, with its correlation ids, and none per heartbeat', async () => {
    const entries: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
    const log: Log = (level, msg, fields = {}) => void entries.push({ level, msg, fields });
    const bus = new InProcessBus();
    let fail = true;
    await bus.subscribe(
      loggedSubscription(
        {
          group: 'dsu.gateway',
          topics: ['dsu.build.completed', 'dsu.agent.heartbeat'],
          handler: async () => {
            if (fail) throw ((fail = false), new Error('database busy'));
          },
        },
        log,
      ),
    );
    const cause = createEvent({ type: 'dsu.build.requested.v1', source: 'gateway', data: {} });
    const done = createEvent({
      type: 'dsu.build.completed.v1',
      source: 'compiler',
      subject: 'app',
      data: {},
      causedBy: cause,
    });
    await (
      await bus.publishTracked('dsu.build.completed', done, 'app')
    ).handled;
    await (
      await bus.publishTracked(
        'dsu.agent.heartbeat',
        createEvent({ type: 'dsu.agent.heartbeat.v1', source: 'a', data: {} }),
        'h',
      )
    ).handled;
    await bus.close();
    const ids = {
      topic: 'dsu.build.completed',
      group: 'dsu.gateway',
      eventId: done.id,
      type: 'dsu.build.completed.v1',
      subject: 'app',
      correlationId: cause.id,
      causationId: cause.id,
      durationMs: expect.any(Number),
    };
    expect(entries).toEqual([
      { level: 'warn', msg: 'event handler failed', fields: { ...ids, error: 'database busy' } },
      { level: 'info', msg: 'event handled', fields: ids },
    ]);
  });
});
