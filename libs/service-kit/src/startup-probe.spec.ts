import { createServer } from 'node:net';
import { listenStartupProbe } from './startup-probe';
import { startupStatus } from './startup-status';

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

describe('startup probe', () => {
  it('answers /health 503 with what the service waits for, and frees the port on close', async () => {
    const port = await freePort();
    const probe = await listenStartupProbe(port, '127.0.0.1', 'compiler');
    try {
      let res = await fetch(`http://127.0.0.1:${port}/health`);
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ status: 'starting', service: 'compiler', detail: 'starting' });
      startupStatus.waiting('Kafka', 'connect ECONNREFUSED 127.0.0.1:9092', 3);
      res = await fetch(`http://127.0.0.1:${port}/health`);
      expect(await res.json()).toMatchObject({
        detail: 'waiting for Kafka',
        reason: 'connect ECONNREFUSED 127.0.0.1:9092',
        attempt: 3,
      });
      res = await fetch(`http://127.0.0.1:${port}/rollouts`);
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({
        error: 'compiler is starting (waiting for Kafka); retry in a moment',
      });
    } finally {
      await probe.close();
    }
    // The service itself listens there next.
    const again = await listenStartupProbe(port, '127.0.0.1', 'compiler');
    await again.close();
  });
});
