import type { IncomingMessage } from 'node:http';
import {
  type CallHandler,
  type ExecutionContext,
  HttpException,
  Inject,
  Injectable,
  type NestInterceptor,
  SetMetadata,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { catchError, from, mergeMap, type Observable, throwError } from 'rxjs';
import { recordAudit, type TokenActor } from '@dsu/access';
import { inTransaction } from '@dsu/outbox';
import { jsonLog, type RunningServices } from '@dsu/pipeline';
import { RUNNING_SERVICES } from '../pipeline.module';

export const AUDITED = 'dsu:audited-action';

/**
 * Names the audit action of a write route (e.g. `version.submit`). Its successes are recorded by
 * the use case, in its own transaction; this makes its refusals (4xx after the access checks:
 * unknown program, duplicate version, ...) recorded too, with the actor and the reason.
 */
export const Audited = (action: string) => SetMetadata(AUDITED, action);

type Req = IncomingMessage & {
  dsuActor?: TokenActor;
  params?: Record<string, string>;
  body?: Record<string, unknown>;
};

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

/** Records an `@Audited` route's refusals as `refused` audit rows (global interceptor). */
@Injectable()
export class AuditRefusalsInterceptor implements NestInterceptor {
  private readonly log = jsonLog('gateway-access');

  constructor(
    private readonly reflector: Reflector,
    @Inject(RUNNING_SERVICES) private readonly running: RunningServices,
  ) {}

  intercept(ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
    const action = this.reflector.get<string | undefined>(AUDITED, ctx.getHandler());
    if (!action) return next.handle();
    return next
      .handle()
      .pipe(
        catchError((err: unknown) =>
          from(this.record(ctx.switchToHttp().getRequest<Req>(), action, err)).pipe(
            mergeMap(() => throwError(() => err)),
          ),
        ),
      );
  }

  private async record(req: Req, action: string, err: unknown): Promise<void> {
    const status = err instanceof HttpException ? err.getStatus() : 500;
    if (!req.dsuActor || status < 400 || status >= 500) return;
    const p = req.params ?? {};
    const b = req.body && typeof req.body === 'object' ? req.body : {};
    const response = (err as HttpException).getResponse();
    const reason =
      typeof response === 'object' && response && 'error' in response
        ? String((response as { error: unknown }).error)
        : (err as Error).message;
    const from = str(b.from);
    const to = str(b.to);
    try {
      await inTransaction(this.running.infra.ds, (em) =>
        recordAudit(em, {
          actor: req.dsuActor as TokenActor,
          action,
          program: (str(p.program) ?? str(b.program) ?? str(b.id))?.slice(0, 128) ?? null,
          target:
            str(p.version) ??
            str(b.version) ??
            (from && to ? `${from}->${to}` : undefined) ??
            str(p.id) ??
            str(b.name) ??
            null,
          outcome: 'refused',
          detail: { status, reason: reason.slice(0, 1000) },
        }),
      );
    } catch (e) {
      // The refusal itself must still reach the client; the lost row is logged instead.
      this.log('error', 'audit row of a refusal not written', { action, status, error: String(e) });
    }
  }
}
