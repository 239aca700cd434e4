import { probeHealth } from '@dsu/service-kit';
import { ApplierModule } from './app.module';

describe('applier service', () => {
  it('boots and reports healthy', async () => {
    expect(await probeHealth(ApplierModule, 'applier')).toMatchObject({ status: 200, body: { status: 'ok', service: 'applier' } });
  });
});
