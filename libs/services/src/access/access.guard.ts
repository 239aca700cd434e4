import type { IncomingMessage, ServerResponse } from 'node:http';
import { type CanActivate, type ExecutionContext, HttpException, Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { authenticate, grants, type TokenActor } from '@dsu/access';
import { jsonLog, type RunningServices } from '@dsu/pipeline';
import { PUBLIC_ROUTE } from '@dsu/service-kit';
import { RUNNING_SERVICES } from '../pipeline.module';
import { CONSUMES, REQUIRED_SCOPE, type ScopeRequirement } from './decorators';
import { GATEWAY_ACCESS, type GatewayAccessConfig } from './gateway-access.config';
import { checkContentType, checkHost, checkOrigin, type Refusal } from './request-policy';

/** A route with no `@RequireScope` and no `@Public()` is for admins only: closed by default. */
const DEFAULT_REQUIREMENT: ScopeRequirement = { scope: 'admin', always: true };

/**
 * The gateway's trust boundary, run before every route (global guard): Host (DNS rebinding),
 * Origin (web pages), bearer token and scope, then Content-Type. Nothing of the route runs on a
 * refusal, so a refused request leaves no row, artifact or event behind.
 *
 * Why browsers cannot drive it: every write needs `Authorization: Bearer <token>`, and a page
 * can only send that header cross-origin after a CORS preflight, which the gateway never
 * answers with Access-Control-Allow-*; the cross-origin requests a page may send without a
 * preflight ("simple requests": text/plain, form bodies, no Authorization) carry no token, have
 * the wrong Content-Type and carry a foreign Origin, and each of the three is refused here on
 * its own. Token and scope checks decide who may act; the other checks are defense in depth.
 */
@Injectable()
export class AccessGuard implements CanActivate {
  private readonly log = jsonLog('gateway-access');

  constructor(
    private readonly reflector: Reflector,
    @Inject(GATEWAY_ACCESS) private readonly cfg: GatewayAccessConfig,
    @Inject(RUNNING_SERVICES) private readonly running: RunningServices,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const targets = [ctx.getHandler(), ctx.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets)) return true;
    const req = ctx.switchToHttp().getRequest<IncomingMessage & { dsuActor?: TokenActor }>();
    const need =
      this.reflector.getAllAndOverride<ScopeRequirement>(REQUIRED_SCOPE, targets) ?? DEFAULT_REQUIREMENT;
    const refusal =
      checkHost(req.headers, this.cfg) ??
      checkOrigin(req.headers, this.cfg) ??
      (await this.checkToken(req, need)) ??
      checkContentType(req.headers, this.reflector.getAllAndOverride<string>(CONSUMES, targets));
    if (!refusal) return true;
    this.log('warn', 'request refused', {
      method: req.method,
      path: req.url?.split('?')[0],
      status: refusal.status,
      reason: refusal.error,
      actor: req.dsuActor?.id ?? null,
      origin: req.headers.origin ?? null,
    });
    if (refusal.status === 401)
      ctx.switchToHttp().getResponse<ServerResponse>().setHeader('WWW-Authenticate', 'Bearer realm="dsu"');
    throw new HttpException({ error: refusal.error }, refusal.status);
  }

  /** 401 without a valid token, 403 without the scope; puts the actor on the request. */
  private async checkToken(
    req: IncomingMessage & { dsuActor?: TokenActor },
    need: ScopeRequirement,
  ): Promise<Refusal | null> {
    if (need.scope === 'read' && !need.always && this.cfg.reads === 'open') return null;
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m)
      return {
        status: 401,
        error: `this endpoint needs an API token with the '${need.scope}' scope: send 'Authorization: Bearer <token>' (the dsu CLI sends DSU_TOKEN, or the token 'dsu up' wrote to $DSU_HOME/token; an admin makes one with 'dsu token create --name <n> --scopes ${need.scope}')`,
      };
    const actor = await authenticate(this.running.infra.ds, m[1]);
    if (!actor)
      return {
        status: 401,
        error:
          "the API token is not valid (unknown or revoked); ask an admin for a new one ('dsu token create')",
      };
    req.dsuActor = actor;
    if (grants(actor.scopes, need.scope)) return null;
    return {
      status: 403,
      error: `token '${actor.name}' (${actor.id}) has the scopes [${actor.scopes.join(', ')}] but this needs '${need.scope}'; ask an admin for a token with it ('dsu token create --name <n> --scopes ${need.scope}')`,
    };
  }
}
