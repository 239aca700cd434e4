import { Module } from '@nestjs/common';
import { HealthModule } from '@dsu/service-kit';

/** The checker service: checks patch safety and signs approved bundles. Transport and wiring only; the logic lives in libs/. */
@Module({ imports: [HealthModule.forService('checker')] })
export class CheckerModule {}
