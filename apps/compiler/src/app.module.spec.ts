import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeHealth } from '@dsu/service-kit';
import { CompilerModule } from './app.module';

describe('compiler service', () => {
  // The service opens its database, artifact store and (applier) run directory under DSU_HOME.
  const home = mkdtempSync(join(tmpdir(), 'dsu-app-'));
  const saved = { ...process.env };
  beforeAll(() => {
    Object.assign(process.env, { DSU_HOME: home, DSU_RUN_DIR: join(home, 'run'), DSU_HOST_ID: 'test-host' });
    delete process.env.KAFKA_BROKERS; // the embedded transport: this test is about the HTTP wiring
    delete process.env.DATABASE_URL;
  });
  afterAll(() => {
    process.env = saved;
    rmSync(home, { recursive: true, force: true });
  });

  it('boots and reports healthy', async () => {
    expect(await probeHealth(CompilerModule, 'compiler')).toMatchObject({
      status: 200,
      body: { status: 'ok', service: 'compiler' },
    });
  });
});
