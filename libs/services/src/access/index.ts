export { AccessGuard } from './access.guard';
export { AccessController } from './access.controller';
export { LocalTokenBootstrap, GATEWAY_ENV } from './local-token';
export { GATEWAY_ACCESS, gatewayAccessFromEnv, type GatewayAccessConfig } from './gateway-access.config';
export { RequireScope, Consumes, CurrentActor, BEARER } from './decorators';
