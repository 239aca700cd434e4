import { Module } from '@nestjs/common';
import { ServiceModule } from '@dsu/services';

/** The patcher service: generates patch bundles between two builds. Transport and wiring only; the logic lives in libs/pipeline. */
@Module({ imports: [ServiceModule.for(['patcher'])] })
export class PatcherModule {}
