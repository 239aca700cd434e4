export { ServiceModule } from './service-modules';
export { PipelineModule, RUNNING_SERVICES, type PipelineModuleOptions } from './pipeline.module';
export { GatewayController } from './gateway.controller';
export { setupOpenApi } from './openapi';
export { serveDashboard, dashboardDir } from './dashboard/serve-dashboard';
export { DashboardFeed, type FeedSnapshot, type FeedTopic } from './dashboard/dashboard-feed';
export {
  AccessGuard,
  AccessController,
  RequireScope,
  Consumes,
  CurrentActor,
  gatewayAccessFromEnv,
  type GatewayAccessConfig,
} from './access';
