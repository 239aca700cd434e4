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

/**
 * Opens the registry database and brings its schema up to date through the migrations
 * (never `synchronize`): SQLite by default, PostgreSQL when a URL is given.
 */
export async function openDatabase(config: DatabaseConfig): Promise<DataSource> {
  const ds = new DataSource(options(config));
  await ds.initialize();
  try {
    await ds.runMigrations({ transaction: 'each' });
  } catch (err) {
    await ds.destroy();
    throw err;
  }
  return ds;
}
