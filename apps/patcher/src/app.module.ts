import { Module } from '@nestjs/common';
import { HealthModule } from '@dsu/service-kit';

/** The patcher service: turns two program models into a patch bundle. Transport and wiring only; the logic lives in libs/. */
@Module({ imports: [HealthModule.forService('patcher')] })
export class PatcherModule {}
