export { provideKafka, type KafkaForSuite } from './kafka';
export { providePostgres, type PostgresForSuite } from './postgres';
export { containerRuntimeAvailable } from './container-runtime';
export { runLauncher, type LaunchedServer } from './launcher';
export { uniqueName } from './unique-name';
