import { Column, Entity, Index, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';

// Times are ISO-8601 strings, like the pipeline's tables: portable and sortable as text.

/**
 * An API token of the gateway. Only the SHA-256 of the token is stored: the token is 256 random
 * bits, so a fast hash cannot be brute-forced, and a leaked database grants nothing.
 */
@Entity({ name: 'api_tokens' })
export class ApiTokenEntity {
  /** Public identifier (`tok_` + 16 hex digits): what lists, audit rows and `revoke` use. */
  @PrimaryColumn({ type: 'varchar', length: 32 })
  id!: string;

  @Column({ type: 'varchar', length: 128 })
  name!: string;

  /** Lower-case hex SHA-256 of the token; unique, the lookup key on every request. */
  @Index('api_tokens_sha256', { unique: true })
  @Column({ name: 'token_sha256', type: 'varchar', length: 64 })
  tokenSha256!: string;

  /** Granted scopes (`submit`, `rollout`, `read`, `admin`). */
  @Column({ type: 'simple-json' })
  scopes!: string[];

  @Column({ name: 'created_at', type: 'varchar', length: 32 })
  createdAt!: string;

  /** Who created it: a token id, or `local` for the token `dsu up` makes for its user. */
  @Column({ name: 'created_by', type: 'varchar', length: 128 })
  createdBy!: string;

  @Column({ name: 'last_used_at', type: 'varchar', length: 32, nullable: true })
  lastUsedAt!: string | null;

  /** Set once revoked; a revoked token never authenticates again. */
  @Column({ name: 'revoked_at', type: 'varchar', length: 32, nullable: true })
  revokedAt!: string | null;
}

/** One audited action: who (token or service), what, on which program and target, when, outcome. */
@Entity({ name: 'audit_log' })
@Index('audit_log_program', ['program', 'seq'])
export class AuditEntity {
  /** Insertion order (autoincrement on both databases): the order `GET /audit` pages by. */
  @PrimaryGeneratedColumn({ type: 'integer' })
  seq!: number;

  @Column({ type: 'varchar', length: 32 })
  at!: string;

  /** `token` (a user through the API) or `service` (e.g. the checker's verdict). */
  @Column({ name: 'actor_kind', type: 'varchar', length: 16 })
  actorKind!: 'token' | 'service';

  @Column({ name: 'actor_id', type: 'varchar', length: 128 })
  actorId!: string;

  @Column({ name: 'actor_name', type: 'varchar', length: 128 })
  actorName!: string;

  /** e.g. `version.submit`, `patch.verdict`, `rollout.request`, `token.create`, `token.revoke`. */
  @Column({ type: 'varchar', length: 64 })
  action!: string;

  @Column({ type: 'varchar', length: 128, nullable: true })
  program!: string | null;

  /** What the action was on: a version label, a patch id, a rollout id, a token id. */
  @Column({ type: 'varchar', length: 256, nullable: true })
  target!: string | null;

  /** e.g. `accepted`, `approved`, `rejected`, `refused`, `created`, `revoked`. */
  @Column({ type: 'varchar', length: 32 })
  outcome!: string;

  @Column({ type: 'simple-json' })
  detail!: Record<string, unknown>;
}
