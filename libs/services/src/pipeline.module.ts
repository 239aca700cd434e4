import { DynamicModule, Inject, Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import { jsonLog, openInfra, type RunningServices, type ServiceName, startServices } from '@dsu/pipeline';
import { startupStatus } from '@dsu/service-kit';

/** Injection token of the running services (infrastructure, registry, applier). */
export const RUNNING_SERVICES = Symbol('RUNNING_SERVICES');

@Injectable()
class ServicesLifecycle implements OnApplicationShutdown {
  constructor(@Inject(RUNNING_SERVICES) private readonly running: RunningServices) {}

  /** SIGTERM: finish in-flight work, commit offsets, publish committed events, close. */
  async onApplicationShutdown(): Promise<void> {
    await this.running.stop();
  }
}

export interface PipelineModuleOptions {
  /** Kafka client id (KAFKA_CLIENT_ID overrides). */
  clientId: string;
  quiet?: boolean;
  env?: NodeJS.ProcessEnv;
}

@Module({})
export class PipelineModule {
  /** Opens database, bus and artifact store from the environment and starts the named services on them. */
  static forServices(names: readonly ServiceName[], opts: PipelineModuleOptions): DynamicModule {
    return {
      module: PipelineModule,
      global: true,
      providers: [
        {
          provide: RUNNING_SERVICES,
          useFactory: async () => {
            const log = jsonLog(opts.clientId, opts.quiet);
            // PostgreSQL / Kafka not up yet: wait (readiness says so), do not crash.
            const onWaiting = (dependency: string, reason: string, attempt: number) => {
              startupStatus.waiting(dependency, reason, attempt);
              log('warn', `waiting for ${dependency}`, { reason, attempt });
            };
            const infra = await openInfra(opts.clientId, opts.env ?? process.env, onWaiting);
            return startServices(infra, names, log);
          },
        },
        ServicesLifecycle,
      ],
      exports: [RUNNING_SERVICES],
    };
  }
}
