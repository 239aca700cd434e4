import { Module } from '@nestjs/common';
import { ServiceModule } from '@dsu/services';

/** The checker service: checks patch bundles and signs approved ones. Transport and wiring only; the logic lives in libs/pipeline. */
@Module({ imports: [ServiceModule.for(['checker'])] })
export class CheckerModule {}
