import type { Finding, SafetyVerdict } from '@dsu/patch-format';
import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

// Times are ISO-8601 strings: portable between SQLite and PostgreSQL and sortable as text.
// JSON-valued columns are `simple-json` (text), so both databases store them the same way.

/** A struct whose layout a patch changes, as the registry keeps it. */
export interface PatchTypeChange {
  name: string;
  oldSize: number;
  newSize: number;
  mode: 'eager' | 'lazy';
  fields: { field: string; how: string }[];
}

/** An event waiting to be published (transactional outbox), written in the producer's transaction. */
@Entity({ name: 'outbox' })
@Index('outbox_pending', ['producer', 'sentAt'])
export class OutboxEntity {
  @PrimaryColumn({ type: 'varchar', length: 64 })
  id!: string;

  /** The service that wrote the row; each service's relay publishes only its own rows. */
  @Column({ type: 'varchar', length: 64 })
  producer!: string;

  @Column({ type: 'varchar', length: 128 })
  topic!: string;

  @Column({ name: 'message_key', type: 'varchar', length: 256 })
  key!: string;

  /** The serialized CloudEvent. */
  @Column({ type: 'text' })
  event!: string;

  @Column({ type: 'integer' })
  seq!: number;

  @Column({ name: 'created_at', type: 'varchar', length: 32 })
  createdAt!: string;

  @Column({ name: 'sent_at', type: 'varchar', length: 32, nullable: true })
  sentAt!: string | null;
}

/** Event ids a consumer has handled: the dedupe record of idempotent consumers. */
@Entity({ name: 'processed_events' })
export class ProcessedEventEntity {
  @PrimaryColumn({ type: 'varchar', length: 64 })
  consumer!: string;

  @PrimaryColumn({ name: 'event_id', type: 'varchar', length: 64 })
  eventId!: string;

  @Column({ type: 'varchar', length: 128 })
  type!: string;

  @Column({ name: 'processed_at', type: 'varchar', length: 32 })
  processedAt!: string;
}

export type VersionStatus = 'building' | 'built' | 'failed';

/** A submitted version of a program and its build. */
@Entity({ name: 'versions' })
export class VersionEntity {
  @PrimaryColumn({ type: 'varchar', length: 128 })
  program!: string;

  @PrimaryColumn({ type: 'varchar', length: 128 })
  version!: string;

  @Column({ type: 'varchar', length: 16 })
  status!: VersionStatus;

  @Column({ name: 'source_sha256', type: 'varchar', length: 64 })
  sourceSha256!: string;

  @Column({ type: 'varchar', length: 256, nullable: true })
  bin!: string | null;

  @Column({ name: 'update_points', type: 'simple-json' })
  updatePoints!: string[];

  @Column({ name: 'build_id', type: 'varchar', length: 128, nullable: true })
  buildId!: string | null;

  @Column({ type: 'varchar', length: 256, nullable: true })
  executable!: string | null;

  @Column({ name: 'executable_sha256', type: 'varchar', length: 64, nullable: true })
  executableSha256!: string | null;

  @Column({ name: 'model_sha256', type: 'varchar', length: 64, nullable: true })
  modelSha256!: string | null;

  @Column({ name: 'build_dir_sha256', type: 'varchar', length: 64, nullable: true })
  buildDirSha256!: string | null;

  @Column({ type: 'text', nullable: true })
  error!: string | null;

  @Column({ type: 'text', nullable: true })
  diagnostics!: string | null;

  @Column({ name: 'duration_ms', type: 'integer', nullable: true })
  durationMs!: number | null;

  /** Submission order within the program (the "earlier version" a patch starts from). */
  @Column({ type: 'integer' })
  seq!: number;

  @Column({ name: 'requested_at', type: 'varchar', length: 32 })
  requestedAt!: string;

  @Column({ name: 'built_at', type: 'varchar', length: 32, nullable: true })
  builtAt!: string | null;

  /** W3C traceparent of the submit's span while tracing was on: rollouts to it join its trace. */
  @Column({ name: 'trace_parent', type: 'varchar', length: 128, nullable: true })
  traceParent!: string | null;
}

/** `abandoned`: still requested when the rollout waiting for it was aborted; a later rollout asks anew. */
export type PatchStatus = 'requested' | 'generated' | 'failed' | 'abandoned';

/** A patch between two builds of a program, from its request to its bundle. */
@Entity({ name: 'patches' })
export class PatchEntity {
  @PrimaryColumn({ name: 'request_id', type: 'varchar', length: 64 })
  requestId!: string;

  @Column({ type: 'varchar', length: 128 })
  program!: string;

  @Column({ name: 'from_version', type: 'varchar', length: 128 })
  fromVersion!: string;

  @Column({ name: 'to_version', type: 'varchar', length: 128 })
  toVersion!: string;

  @Column({ name: 'from_build_id', type: 'varchar', length: 128 })
  fromBuildId!: string;

  @Column({ name: 'to_build_id', type: 'varchar', length: 128 })
  toBuildId!: string;

  @Column({ type: 'varchar', length: 16 })
  status!: PatchStatus;

  @Column({ name: 'patch_id', type: 'varchar', length: 128, nullable: true })
  patchId!: string | null;

  @Column({ name: 'bundle_sha256', type: 'varchar', length: 64, nullable: true })
  bundleSha256!: string | null;

  @Column({ type: 'simple-json', nullable: true })
  functions!: { key: string; change: string }[] | null;

  /** Structs whose layout the patch changes (null: not generated yet, or before this was kept). */
  @Column({ type: 'simple-json', nullable: true })
  types!: PatchTypeChange[] | null;

  /** Globals the patch adds, removes or changes. */
  @Column({ type: 'simple-json', nullable: true })
  globals!: { key: string; change: string; note?: string }[] | null;

  @Column({ type: 'text', nullable: true })
  error!: string | null;

  @Column({ type: 'simple-json', nullable: true })
  reasons!: string[] | null;

  @Column({ name: 'requested_at', type: 'varchar', length: 32 })
  requestedAt!: string;

  @Column({ name: 'generated_at', type: 'varchar', length: 32, nullable: true })
  generatedAt!: string | null;
}

/** The checker's verdict on a patch bundle, with the signature of an approved one. */
@Entity({ name: 'verdicts' })
export class VerdictEntity {
  @PrimaryColumn({ name: 'patch_id', type: 'varchar', length: 128 })
  patchId!: string;

  @Column({ type: 'varchar', length: 128 })
  program!: string;

  @Column({ name: 'bundle_sha256', type: 'varchar', length: 64 })
  bundleSha256!: string;

  @Column({ type: 'varchar', length: 16 })
  verdict!: 'approved' | 'rejected';

  @Column({ type: 'simple-json' })
  findings!: Finding[];

  /** The update points the analysis allows and denies; null for verdicts stored before it did. */
  @Column({ name: 'update_points', type: 'simple-json', nullable: true })
  updatePoints!: SafetyVerdict['updatePoints'] | null;

  @Column({ type: 'text', nullable: true })
  signature!: string | null;

  @Column({ name: 'key_id', type: 'varchar', length: 128, nullable: true })
  keyId!: string | null;

  @Column({ name: 'checked_at', type: 'varchar', length: 32 })
  checkedAt!: string;
}

/** `aborted`: ended by `dsu rollout abort` (the reason is in the notes); `dsu rollout retry` starts it over. */
export type RolloutStatus = 'requested' | 'running' | 'completed' | 'failed' | 'aborted';

/** A request to move every process of a program to a version. */
@Entity({ name: 'rollouts' })
export class RolloutEntity {
  @PrimaryColumn({ type: 'varchar', length: 64 })
  id!: string;

  @Column({ type: 'varchar', length: 128 })
  program!: string;

  @Column({ type: 'varchar', length: 128 })
  version!: string;

  @Column({ type: 'varchar', length: 16 })
  status!: RolloutStatus;

  /** Why nothing or not everything was updated (e.g. no approved patch from a running build). */
  @Column({ type: 'simple-json' })
  notes!: string[];

  @Column({ name: 'requested_at', type: 'varchar', length: 32 })
  requestedAt!: string;

  @Column({ name: 'completed_at', type: 'varchar', length: 32, nullable: true })
  completedAt!: string | null;
}

/**
 * Where a targeted process stands in its rollout: waiting for the patch from its build to the
 * target build (requested on demand when there was none), commanded (the update command is out),
 * reported (its result arrived), failed (its patch failed or was rejected, or no result came in
 * time; the reason says which), or aborted (its rollout was aborted before it finished).
 */
export type RolloutTargetState = 'waiting' | 'commanded' | 'reported' | 'failed' | 'aborted';

/** A process a rollout targets; `reported` once its result arrived. */
@Entity({ name: 'rollout_targets' })
export class RolloutTargetEntity {
  @PrimaryColumn({ name: 'rollout_id', type: 'varchar', length: 64 })
  rolloutId!: string;

  @PrimaryColumn({ type: 'varchar', length: 128 })
  host!: string;

  @PrimaryColumn({ type: 'integer' })
  pid!: number;

  /** The patch the command carries; null while the target waits for it (or when it failed). */
  @Column({ name: 'patch_id', type: 'varchar', length: 128, nullable: true })
  patchId!: string | null;

  @Column({ type: 'boolean' })
  reported!: boolean;

  @Column({ type: 'varchar', length: 16, default: 'commanded' })
  state!: RolloutTargetState;

  /** The build the process ran when the rollout was planned, and the rollout's target build. */
  @Column({ name: 'from_build_id', type: 'varchar', length: 128, nullable: true })
  fromBuildId!: string | null;

  @Column({ name: 'to_build_id', type: 'varchar', length: 128, nullable: true })
  toBuildId!: string | null;

  /** Why a failed target gets no command (its patch failed or was rejected). */
  @Column({ type: 'text', nullable: true })
  reason!: string | null;
}

/** One process's outcome of an update command. */
@Entity({ name: 'update_results' })
export class UpdateResultEntity {
  @PrimaryColumn({ name: 'rollout_id', type: 'varchar', length: 64 })
  rolloutId!: string;

  @PrimaryColumn({ type: 'varchar', length: 128 })
  host!: string;

  @PrimaryColumn({ type: 'integer' })
  pid!: number;

  @Column({ type: 'varchar', length: 128 })
  program!: string;

  @Column({ name: 'patch_id', type: 'varchar', length: 128, nullable: true })
  patchId!: string | null;

  @Column({ type: 'varchar', length: 16 })
  outcome!: string;

  @Column({ name: 'pause_us', type: 'integer' })
  pauseUs!: number;

  @Column({ name: 'update_point', type: 'varchar', length: 256, nullable: true })
  updatePoint!: string | null;

  @Column({ type: 'simple-json' })
  reasons!: string[];

  @Column({ name: 'build_id', type: 'varchar', length: 128, nullable: true })
  buildId!: string | null;

  @Column({ name: 'event_id', type: 'varchar', length: 64 })
  eventId!: string;

  @Column({ name: 'reported_at', type: 'varchar', length: 32 })
  reportedAt!: string;

  /** Data updates: instances transformed at the update point; null for code-only patches. */
  @Column({ type: 'integer', nullable: true })
  instances!: number | null;

  @Column({ name: 'transform_us', type: 'integer', nullable: true })
  transformUs!: number | null;
}

/** The last heartbeat of each host's applier: its DSU-enabled processes. */
@Entity({ name: 'inventory' })
export class InventoryEntity {
  @PrimaryColumn({ type: 'varchar', length: 128 })
  host!: string;

  @Column({ name: 'run_dir', type: 'varchar', length: 1024 })
  runDir!: string;

  @Column({ type: 'simple-json' })
  processes!: { pid: number; program: string; buildId: string; baseBuildId: string; patches: string[] }[];

  @Column({ name: 'seen_at', type: 'varchar', length: 32 })
  seenAt!: string;
}
