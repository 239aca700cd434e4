import 'reflect-metadata';
import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { DataSource, DataSourceOptions } from 'typeorm';
import { ProgramEntity } from './entities/program.entity';
import {
  InventoryEntity,
  OutboxEntity,
  PatchEntity,
  ProcessedEventEntity,
  RolloutEntity,
  RolloutTargetEntity,
  UpdateResultEntity,
  VerdictEntity,
  VersionEntity,
} from './entities/pipeline.entities';
import { ApiTokenEntity, AuditEntity } from './entities/access.entities';
import { CreatePrograms1764216000000 } from './migrations/1764216000000-CreatePrograms';
import { CreatePipeline1764230000000 } from './migrations/1764230000000-CreatePipeline';
import { RolloutTargetsWaitForPatches1795769237000 } from './migrations/1795769237000-RolloutTargetsWaitForPatches';
import { CreateAccess1796500000000 } from './migrations/1796500000000-CreateAccess';
import { VerdictUpdatePoints1796600000000 } from './migrations/1796600000000-VerdictUpdatePoints';
import { VersionTraceParent1796700000000 } from './migrations/1796700000000-VersionTraceParent';
import { ResultInstances1796800000000 } from './migrations/1796800000000-ResultInstances';
import { PatchTypesAndGlobals1796900000000 } from './migrations/1796900000000-PatchTypesAndGlobals';
import { type StartupRetry, untilConnected } from './open-with-retry';

export const entities = [
  ProgramEntity,
  OutboxEntity,
  ProcessedEventEntity,
  VersionEntity,
  PatchEntity,
  VerdictEntity,
  RolloutEntity,
  RolloutTargetEntity,
  UpdateResultEntity,
  InventoryEntity,
  ApiTokenEntity,
  AuditEntity,
];
export const migrations = [
  CreatePrograms1764216000000,
  CreatePipeline1764230000000,
  RolloutTargetsWaitForPatches1795769237000,
  CreateAccess1796500000000,
  VerdictUpdatePoints1796600000000,
  VersionTraceParent1796700000000,
  ResultInstances1796800000000,
  PatchTypesAndGlobals1796900000000,
];

export interface DatabaseConfig {
  /** `postgres://...` selects PostgreSQL; otherwise SQLite at `sqlitePath`. */
  databaseUrl?: string;
  sqlitePath?: string;
}

/** `$DSU_HOME` (default `~/.dsu`): where the embedded default keeps its database and artifacts. */
export function dsuHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.DSU_HOME ?? join(homedir(), '.dsu');
}

export function databaseConfigFromEnv(env: NodeJS.ProcessEnv = process.env): DatabaseConfig {
  return env.DATABASE_URL
    ? { databaseUrl: env.DATABASE_URL }
    : { sqlitePath: join(dsuHome(env), 'dsu.sqlite') };
}

function options(config: DatabaseConfig): DataSourceOptions {
  const common = { entities, migrations, synchronize: false, migrationsRun: false, logging: false } as const;
  if (config.databaseUrl) {
    if (!/^postgres(ql)?:\/\//.test(config.databaseUrl)) {
      throw new Error(`DATABASE_URL must be a postgres:// URL, got '${config.databaseUrl.split('@').pop()}'`);
    }
    return { type: 'postgres', url: config.databaseUrl, ...common };
  }
  const path = config.sqlitePath ?? ':memory:';
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  return { type: 'better-sqlite3', database: path, enableWAL: path !== ':memory:', ...common };
}

// Key of the session-level advisory lock that serializes migrations across services (any constant
// unique to dsu: "dsu-migr" in ASCII).
const MIGRATION_LOCK_KEY = '7239770291339096690';

/**
 * Opens the registry database and brings its schema up to date through the migrations
 * (never `synchronize`): SQLite by default, PostgreSQL when a URL is given. On PostgreSQL a
 * server that is not up yet is waited for (`retry`), and the migrations run under an advisory
 * lock, so services started at the same moment on an empty database migrate one after the other
 * (the later ones find nothing to do) instead of colliding on CREATE TABLE.
 */
export async function openDatabase(config: DatabaseConfig, retry: StartupRetry = {}): Promise<DataSource> {
  return untilConnected(async () => {
    const ds = new DataSource(options(config));
    await ds.initialize();
    try {
      if (ds.options.type === 'postgres') await migrateLocked(ds);
      else await ds.runMigrations({ transaction: 'each' });
    } catch (err) {
      await ds.destroy().catch(() => undefined);
      throw err;
    }
    return ds;
  }, retry);
}

/** Runs the pending migrations while holding the migration advisory lock on one connection. */
async function migrateLocked(ds: DataSource): Promise<void> {
  const lock = ds.createQueryRunner();
  await lock.connect();
  try {
    await lock.query(`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY})`);
    try {
      await ds.runMigrations({ transaction: 'each' });
    } finally {
      await lock.query(`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY})`);
    }
  } finally {
    await lock.release();
  }
}
