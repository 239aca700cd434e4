import { applyDecorators, createParamDecorator, type ExecutionContext, SetMetadata } from '@nestjs/common';
import { ApiBearerAuth, ApiConsumes, ApiExtension, ApiResponse } from '@nestjs/swagger';
import type { Scope, TokenActor } from '@dsu/access';

export const REQUIRED_SCOPE = 'dsu:required-scope';
export const CONSUMES = 'dsu:consumes';

/** What `@RequireScope` stores for the guard. */
export interface ScopeRequirement {
  scope: Scope;
  /** A `read` route that needs its token even when `DSU_GATEWAY_READS=open` (the audit log). */
  always: boolean;
}

/** The name of the bearer security scheme in the OpenAPI document. */
export const BEARER = 'bearer';

/**
 * The scope a route (or every route of a controller) needs; the guard answers 401 without a
 * valid token and 403 without the scope. Declared in the OpenAPI document as the bearer scheme
 * plus `x-dsu-scope`. Routes with neither this nor `@Public()` need `admin` (closed by default).
 */
export function RequireScope(scope: Scope, opts: { always?: boolean } = {}) {
  const always = opts.always ?? scope !== 'read';
  return applyDecorators(
    SetMetadata(REQUIRED_SCOPE, { scope, always } satisfies ScopeRequirement),
    ApiBearerAuth(BEARER),
    ApiExtension('x-dsu-scope', scope),
    ApiResponse({ status: 401, description: 'no valid API token (Authorization: Bearer <token>)' }),
    ApiResponse({
      status: 403,
      description: `the token lacks the '${scope}' scope, or Host / Origin refused`,
    }),
  );
}

/**
 * The one media type a route's request body must have (415 otherwise). A route without it takes
 * no body at all. Also declares the type in the OpenAPI document.
 */
export function Consumes(mediaType: 'application/json' | 'application/gzip') {
  return applyDecorators(
    SetMetadata(CONSUMES, mediaType),
    ApiConsumes(mediaType),
    ApiResponse({ status: 415, description: `the body is not ${mediaType}` }),
  );
}

/** The request's authenticated actor, as the guard put it there (`undefined` on open reads). */
export const CurrentActor = createParamDecorator(
  (_: unknown, ctx: ExecutionContext): TokenActor | undefined =>
    (ctx.switchToHttp().getRequest() as { dsuActor?: TokenActor }).dsuActor,
);
