import { runService } from '@dsu/service-kit';
import { PatcherModule } from './app.module';

runService(PatcherModule, { name: 'patcher', portEnv: 'DSU_PATCHER_PORT', defaultPort: 7402 }).catch((err) => {
  console.error(JSON.stringify({ level: 'fatal', service: 'patcher', msg: 'failed to start', error: String(err) }));
  process.exit(1);
});
