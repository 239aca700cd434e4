import { Module } from '@nestjs/common';
import { ServiceModule } from '@dsu/services';

/** The applier service: applies approved patches to this host's processes (DSU_HOST_ID, DSU_RUN_DIR). Transport and wiring only; the logic lives in libs/pipeline. */
@Module({ imports: [ServiceModule.for(['applier'])] })
export class ApplierModule {}
