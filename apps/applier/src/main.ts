import { runService } from '@dsu/service-kit';
import { ApplierModule } from './app.module';

runService(ApplierModule, { name: 'applier', portEnv: 'DSU_APPLIER_PORT', defaultPort: 7404 }).catch((err) => {
  console.error(JSON.stringify({ level: 'fatal', service: 'applier', msg: 'failed to start', error: String(err) }));
  process.exit(1);
});
