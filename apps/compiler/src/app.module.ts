import { Module } from '@nestjs/common';
import { ServiceModule } from '@dsu/services';

/** The compiler service: builds program versions with dsu-cc. Transport and wiring only; the logic lives in libs/pipeline. */
@Module({ imports: [ServiceModule.for(['compiler'])] })
export class CompilerModule {}
