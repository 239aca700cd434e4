export { HealthModule } from './health.module';
export { createService, runService, probeHealth, type ServiceOptions } from './bootstrap';
export { SERVICE_NAME } from './service-identity';
export { Public, PUBLIC_ROUTE } from './public.decorator';
export { tlsOptionsFromEnv, type TlsOptions } from './tls';
export { startupStatus, StartupStatus, type StartupState } from './startup-status';
export { listenStartupProbe, type StartingHealth } from './startup-probe';
