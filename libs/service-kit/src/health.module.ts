import { DynamicModule, Module } from '@nestjs/common';
import { HealthController } from './health.controller';
import { SERVICE_NAME } from './service-identity';

@Module({})
export class HealthModule {
  /** `GET /health` for the named service. */
  static forService(service: string): DynamicModule {
    return {
      module: HealthModule,
      controllers: [HealthController],
      providers: [{ provide: SERVICE_NAME, useValue: service }],
    };
  }
}
