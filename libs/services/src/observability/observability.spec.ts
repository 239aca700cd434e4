import type { RunningServices } from '@dsu/pipeline';
import { type GatewayApp, startGatewayApp } from '../../test/gateway-app';
import { RUNNING_SERVICES } from '../pipeline.module';

describe('readiness, liveness and /metrics of a service (real HTTP, SQLite)', () => {
  let gw: GatewayApp;
  let url: string;
  let token: string;
  beforeAll(async () => {
    gw = await startGatewayApp(['gateway', 'applier']);
    ({ url, token } = gw);
  });
  afterAll(() => gw.close());

  it('is ready while the database and the bus answer, and says which one does not', async () => {
    const ready = await fetch(`${url}/health/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({
      status: 'ok',
      details: { database: { status: 'up', kind: 'sqlite' }, broker: { status: 'up', kind: 'in-process' } },
    });
    const { infra } = gw.app.get<RunningServices>(RUNNING_SERVICES);
    await infra.ds.destroy();
    try {
      const down = await fetch(`${url}/health/ready`);
      expect(down.status).toBe(503);
      expect(await down.json()).toMatchObject({
        status: 'error',
        error: { database: { status: 'down', message: expect.any(String) } },
        details: { broker: { status: 'up' } },
      });
      // Alive all the same: a liveness probe must not restart a process that waits for its database.
      expect((await fetch(`${url}/health/live`)).status).toBe(200);
    } finally {
      await infra.ds.initialize();
    }
    expect((await fetch(`${url}/health/ready`)).status).toBe(200);
  });

  it("serves /metrics to a token with the read scope, with the services' series", async () => {
    const open = await fetch(`${url}/metrics`);
    expect(open.status).toBe(401);
    const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const body = await res.text();
    // The applier's first heartbeat went through the gateway's consumer.
    expect(body).toMatch(/^dsu_events_produced_total\{topic="dsu\.agent\.heartbeat"\} [1-9]/m);
    expect(body).toMatch(
      /^dsu_events_consumed_total\{topic="dsu\.agent\.heartbeat",group="dsu\.gateway",outcome="handled"\} [1-9]/m,
    );
    expect(body).toMatch(/^dsu_consumer_lag\{group="dsu\.gateway",topic="dsu\.update\.result"\} 0$/m);
    expect(body).toMatch(/^dsu_outbox_backlog\{producer="gateway"\} 0$/m);
    expect(body).toMatch(/^dsu_fleet_heartbeat_age_seconds\{host="[^"]+"\} \d/m);
    expect(body).toMatch(/^process_resident_memory_bytes \d/m);
  });
});
