import { probeHealth } from '@dsu/service-kit';
import { GatewayModule } from './app.module';

describe('gateway service', () => {
  it('boots and reports healthy', async () => {
    expect(await probeHealth(GatewayModule, 'gateway')).toMatchObject({ status: 200, body: { status: 'ok', service: 'gateway' } });
  });
});
