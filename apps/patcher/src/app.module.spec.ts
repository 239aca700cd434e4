import { probeHealth } from '@dsu/service-kit';
import { PatcherModule } from './app.module';

describe('patcher service', () => {
  it('boots and reports healthy', async () => {
    expect(await probeHealth(PatcherModule, 'patcher')).toMatchObject({ status: 200, body: { status: 'ok', service: 'patcher' } });
  });
});
