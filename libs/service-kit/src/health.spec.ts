import { Module } from '@nestjs/common';
import { probeHealth } from './bootstrap';
import { HealthModule } from './health.module';

@Module({ imports: [HealthModule.forService('probe')] })
class ProbeModule {}

describe('HealthModule', () => {
  it('answers GET /health with the service name over real HTTP', async () => {
    expect(await probeHealth(ProbeModule, 'probe')).toEqual({
      status: 200,
      body: { status: 'ok', service: 'probe', uptimeMs: expect.any(Number) },
    });
  });
});
