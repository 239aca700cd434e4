import { Module } from '@nestjs/common';
import { ServiceModule } from '@dsu/services';

/** The gateway service: HTTP API, registry of the events, rollouts and artifacts. Transport and wiring only; the logic lives in libs/pipeline. */
@Module({ imports: [ServiceModule.for(['gateway'])] })
export class GatewayModule {}
