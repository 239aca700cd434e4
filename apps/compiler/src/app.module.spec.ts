import { probeHealth } from '@dsu/service-kit';
import { CompilerModule } from './app.module';

describe('compiler service', () => {
  it('boots and reports healthy', async () => {
    expect(await probeHealth(CompilerModule, 'compiler')).toMatchObject({ status: 200, body: { status: 'ok', service: 'compiler' } });
  });
});
