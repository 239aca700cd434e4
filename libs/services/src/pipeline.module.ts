import { DynamicModule, Inject, Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import { jsonLog, openInfra, type RunningServices, type ServiceName, startServices } from '@dsu/pipeline';
import { startupStatus } from '@dsu/service-kit';
import { startTracing, stopTracing } from '@dsu/tracing';

/** Injection token of the running services (infrastructure, registry, applier). */
export const RUNNING_SERVICES = Symbol('RUNNING_SERVICES');

@Injectable()
class ServicesLifecycle implements OnApplicationShutdown {
  constructor(@Inject(RUNNING_SERVICES) private readonly running: RunningServices) {}

  /** SIGTERM: finish in-flight work, commit offsets, publish committed events, close; export the last spans. */
  async onApplicationShutdown(): Promise<void> {
    await this.running.stop();
    await stopTracing();
  }
}

export interface PipelineModuleOptions {
  /** Kafka client id (KAFKA_CLIENT_ID overrides). */
  clientId: string;
  /** The OpenTelemetry service name of this process's spans (default: the client id). */
  serviceName?: string;
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
            const env = opts.env ?? process.env;
            // Off unless an OTLP endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT).
            const tracing = startTracing(opts.serviceName ?? opts.clientId, env);
            if (tracing) log('info', 'tracing on', { serviceName: tracing.serviceName });
            // PostgreSQL / Kafka not up yet: wait (readiness says so), do not crash.
            const onWaiting = (dependency: string, reason: string, attempt: number) => {
              startupStatus.waiting(dependency, reason, attempt);
              log('warn', `waiting for ${dependency}`, { reason, attempt });
            };
            const infra = await openInfra(opts.clientId, env, onWaiting);
            return startServices(infra, names, log);
          },
        },
        ServicesLifecycle,
      ],
      exports: [RUNNING_SERVICES],
    };
  }
}
