import { runService } from '@dsu/service-kit';
import { CheckerModule } from './app.module';

runService(CheckerModule, { name: 'checker', portEnv: 'DSU_CHECKER_PORT', defaultPort: 7403 }).catch((err) => {
  console.error(JSON.stringify({ level: 'fatal', service: 'checker', msg: 'failed to start', error: String(err) }));
  process.exit(1);
});
