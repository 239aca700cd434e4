import { DynamicModule, Module, type Provider } from '@nestjs/common';
import { APP_GUARD, APP_INTERCEPTOR } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import { HealthModule } from '@dsu/service-kit';
import { SERVICE_NAMES, type ServiceName } from '@dsu/pipeline';
import { AccessController } from './access/access.controller';
import { AccessGuard } from './access/access.guard';
import { AuditRefusalsInterceptor } from './access/audit-refusals.interceptor';
import { GATEWAY_ACCESS, gatewayAccessFromEnv } from './access/gateway-access.config';
import { GATEWAY_ENV, LocalTokenBootstrap } from './access/local-token';
import { DashboardFeed } from './dashboard/dashboard-feed';
import { StreamController } from './dashboard/stream.controller';
import { GatewayController } from './gateway.controller';
import { MetricsController } from './observability/metrics.controller';
import { ReadinessController } from './observability/readiness.controller';
import { PipelineModule, type PipelineModuleOptions } from './pipeline.module';

@Module({})
export class ServiceModule {
  /**
   * One service (an app) or several in one process (`dsu up`): health endpoints (`/health`,
   * `/health/live`, `/health/ready`), `/metrics`, the services' consumers, and the gateway's HTTP API when the gateway is among them, behind its access
   * guard (tokens, scopes, Host / Origin / Content-Type checks) and with the local admin token.
   */
  static for(
    names: readonly ServiceName[],
    opts: Partial<PipelineModuleOptions> & { health?: string } = {},
  ): DynamicModule {
    const health = opts.health ?? (names.length === 1 ? names[0] : 'dsu');
    const gateway = names.includes('gateway');
    const env = opts.env ?? process.env;
    const access: Provider[] = [
      { provide: GATEWAY_ACCESS, useValue: gatewayAccessFromEnv(env) },
      { provide: GATEWAY_ENV, useValue: env },
      { provide: APP_GUARD, useClass: AccessGuard },
      { provide: APP_INTERCEPTOR, useClass: AuditRefusalsInterceptor },
      LocalTokenBootstrap,
    ];
    return {
      module: ServiceModule,
      imports: [
        HealthModule.forService(health),
        TerminusModule.forRoot({ errorLogStyle: 'json' }),
        PipelineModule.forServices(names, {
          clientId: `dsu-${health}`,
          serviceName: health === 'dsu' ? 'dsu' : `dsu-${health}`,
          ...opts,
        }),
      ],
      controllers: [
        ReadinessController,
        MetricsController,
        ...(gateway ? [GatewayController, AccessController, StreamController] : []),
      ],
      providers: gateway ? [...access, DashboardFeed] : [],
    };
  }

  static all(opts: Partial<PipelineModuleOptions> = {}): DynamicModule {
    return ServiceModule.for(SERVICE_NAMES, { ...opts, health: 'dsu' });
  }
}
