export { HealthModule } from './health.module';
export { createService, runService, probeHealth, type ServiceOptions } from './bootstrap';
export { SERVICE_NAME } from './service-identity';
