// A gateway (with the other named services) on an ephemeral loopback port over SQLite in a fresh
// DSU_HOME, as the specs of this lib drive it over real HTTP.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import type { ServiceName } from '@dsu/pipeline';
import { createService } from '@dsu/service-kit';
import { ServiceModule } from '../src/service-modules';

export interface GatewayApp {
  app: INestApplication;
  url: string;
  home: string;
  /** The admin token the gateway wrote for the local user on its first start. */
  token: string;
  close(): Promise<void>;
}

/** Starts the services; `configure` runs before it listens (e.g. to serve the dashboard). */
export async function startGatewayApp(
  names: ServiceName[] = ['gateway'],
  opts: { env?: NodeJS.ProcessEnv; configure?: (app: INestApplication, home: string) => void } = {},
): Promise<GatewayApp> {
  const home = mkdtempSync(join(tmpdir(), 'dsu-gw-'));
  const app = await createService(
    ServiceModule.for(names, { env: { DSU_HOME: home, DSU_RUN_DIR: home, ...opts.env }, quiet: true }),
    'gateway',
    true,
  );
  opts.configure?.(app, home);
  await app.listen(0, '127.0.0.1');
  return {
    app,
    home,
    url: (await app.getUrl()).replace('[::1]', '127.0.0.1'),
    token: readFileSync(join(home, 'token'), 'utf8').trim(),
    close: async () => {
      await app.close();
      rmSync(home, { recursive: true, force: true });
    },
  };
}
