import { probeHealth } from '@dsu/service-kit';
import { CheckerModule } from './app.module';

describe('checker service', () => {
  it('boots and reports healthy', async () => {
    expect(await probeHealth(CheckerModule, 'checker')).toMatchObject({ status: 200, body: { status: 'ok', service: 'checker' } });
  });
});
