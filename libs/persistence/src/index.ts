export {
  openDatabase,
  databaseConfigFromEnv,
  dsuHome,
  entities,
  migrations,
  type DatabaseConfig,
} from './data-source';
export { isTransientDbError, type OnWaiting, type StartupRetry } from './open-with-retry';
export { ProgramEntity } from './entities/program.entity';
export {
  OutboxEntity,
  ProcessedEventEntity,
  VersionEntity,
  PatchEntity,
  VerdictEntity,
  RolloutEntity,
  RolloutTargetEntity,
  UpdateResultEntity,
  InventoryEntity,
  type VersionStatus,
  type PatchStatus,
  type RolloutStatus,
  type RolloutTargetState,
  type PatchTypeChange,
} from './entities/pipeline.entities';
export { ApiTokenEntity, AuditEntity } from './entities/access.entities';
