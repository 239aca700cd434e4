import { Module } from '@nestjs/common';
import { HealthModule } from '@dsu/service-kit';

/** The gateway service: HTTP API, registry of the events, rollouts and artifacts. Transport and wiring only; the logic lives in libs/. */
@Module({ imports: [HealthModule.forService('gateway')] })
export class GatewayModule {}
