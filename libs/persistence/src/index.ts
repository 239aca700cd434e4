export { openDatabase, databaseConfigFromEnv, dsuHome, entities, migrations, type DatabaseConfig } from './data-source';
export { ProgramEntity } from './entities/program.entity';
