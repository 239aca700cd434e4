import { SetMetadata } from '@nestjs/common';

/** Metadata key of `@Public()`; access guards let such routes through without any check. */
export const PUBLIC_ROUTE = 'dsu:public-route';

/**
 * Marks a controller or route as open to anyone who reaches the port (health probes): no token,
 * no Host or Origin check. Everything else a guard protects is closed by default.
 */
export const Public = () => SetMetadata(PUBLIC_ROUTE, true);
