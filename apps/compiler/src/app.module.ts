import { Module } from '@nestjs/common';
import { HealthModule } from '@dsu/service-kit';

/** The compiler service: builds program versions with dsu-cc. Transport and wiring only; the logic lives in libs/. */
@Module({ imports: [HealthModule.forService('compiler')] })
export class CompilerModule {}
