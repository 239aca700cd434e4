import { Module } from '@nestjs/common';
import { HealthModule } from '@dsu/service-kit';

/** The applier service: applies approved patches to the DSU-enabled processes of its host. Transport and wiring only; the logic lives in libs/. */
@Module({ imports: [HealthModule.forService('applier')] })
export class ApplierModule {}
