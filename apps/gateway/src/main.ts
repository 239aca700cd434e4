import { runService } from '@dsu/service-kit';
import { serveDashboard, setupOpenApi } from '@dsu/services';
import { GatewayModule } from './app.module';

runService(GatewayModule, { name: 'gateway', portEnv: 'DSU_GATEWAY_PORT', defaultPort: 7400, configure: (app) => (setupOpenApi(app), serveDashboard(app)) }).catch((err) => {
  console.error(JSON.stringify({ level: 'fatal', service: 'gateway', msg: 'failed to start', error: String(err) }));
  process.exit(1);
});
