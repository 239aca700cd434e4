import { runService } from '@dsu/service-kit';
import { CompilerModule } from './app.module';

runService(CompilerModule, { name: 'compiler', portEnv: 'DSU_COMPILER_PORT', defaultPort: 7401 }).catch((err) => {
  console.error(JSON.stringify({ level: 'fatal', service: 'compiler', msg: 'failed to start', error: String(err) }));
  process.exit(1);
});
