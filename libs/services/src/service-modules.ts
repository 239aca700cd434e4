import { DynamicModule, Module } from '@nestjs/common';
import { HealthModule } from '@dsu/service-kit';
import { SERVICE_NAMES, type ServiceName } from '@dsu/pipeline';
import { GatewayController } from './gateway.controller';
import { PipelineModule, type PipelineModuleOptions } from './pipeline.module';

@Module({})
export class ServiceModule {
  /**
   * One service (an app) or several in one process (`dsu up`): health endpoint, the services'
   * consumers, and the gateway's HTTP API when the gateway is among them.
   */
  static for(
    names: readonly ServiceName[],
    opts: Partial<PipelineModuleOptions> & { health?: string } = {},
  ): DynamicModule {
    const health = opts.health ?? (names.length === 1 ? names[0] : 'dsu');
    return {
      module: ServiceModule,
      imports: [
        HealthModule.forService(health),
        PipelineModule.forServices(names, { clientId: `dsu-${health}`, ...opts }),
      ],
      controllers: names.includes('gateway') ? [GatewayController] : [],
    };
  }

  static all(opts: Partial<PipelineModuleOptions> = {}): DynamicModule {
    return ServiceModule.for(SERVICE_NAMES, { ...opts, health: 'dsu' });
  }
}
