import { Body, Controller, Delete, Get, HttpException, Inject, Param, Post, Query } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import {
  AccessError,
  AUDIT_MAX_LIMIT,
  createToken,
  listAudit,
  listTokens,
  revokeToken,
  SCOPES,
  type TokenActor,
} from '@dsu/access';
import type { RunningServices } from '@dsu/pipeline';
import { RUNNING_SERVICES } from '../pipeline.module';
import { Audited } from './audit-refusals.interceptor';
import { Consumes, CurrentActor, RequireScope } from './decorators';

/** Turns refusals of the access use cases into HTTP errors with a JSON body `{ "error": "..." }`. */
async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof AccessError) throw new HttpException({ error: err.message }, err.status);
    throw err;
  }
}

/** API tokens (admin scope) and the audit log (read scope) of the gateway. */
@ApiTags('access')
@Controller()
export class AccessController {
  constructor(@Inject(RUNNING_SERVICES) private readonly running: RunningServices) {}

  private get ds() {
    return this.running.infra.ds;
  }

  @Post('tokens')
  @RequireScope('admin')
  @Audited('token.create')
  @Consumes('application/json')
  @ApiOperation({
    summary:
      'Create an API token; the answer holds the token itself, shown this once (only its SHA-256 is stored)',
  })
  @ApiBody({
    schema: {
      type: 'object',
      required: ['name', 'scopes'],
      properties: {
        name: { type: 'string' },
        scopes: { type: 'array', items: { type: 'string', enum: [...SCOPES] } },
      },
    },
  })
  create(@Body() body: { name?: unknown; scopes?: unknown }, @CurrentActor() actor: TokenActor) {
    if (typeof body?.name !== 'string' || !Array.isArray(body.scopes))
      throw new HttpException(
        {
          error: `body must be JSON {"name": "<name>", "scopes": [${SCOPES.map((s) => `"${s}"`).join(', ')}]}`,
        },
        400,
      );
    return call(() =>
      createToken(this.ds, { name: body.name as string, scopes: body.scopes as unknown[], by: actor }),
    );
  }

  @Get('tokens')
  @RequireScope('admin')
  @ApiOperation({
    summary: 'API tokens (never the tokens themselves): name, scopes, created, last used, revoked',
  })
  tokens() {
    return listTokens(this.ds);
  }

  @Delete('tokens/:id')
  @RequireScope('admin')
  @Audited('token.revoke')
  @ApiOperation({ summary: 'Revoke a token: it never authenticates again (idempotent)' })
  revoke(@Param('id') id: string, @CurrentActor() actor: TokenActor) {
    return call(() => revokeToken(this.ds, id, actor));
  }

  @Get('audit')
  @RequireScope('read', { always: true })
  @ApiOperation({
    summary:
      'Who submitted, approved (the checker), rolled out, created or revoked tokens: the latest entries, oldest first',
  })
  @ApiQuery({ name: 'program', required: false })
  @ApiQuery({ name: 'limit', required: false, description: `1-${AUDIT_MAX_LIMIT}, default 100` })
  audit(@Query('program') program?: string, @Query('limit') limit?: string) {
    const n = limit === undefined ? undefined : Number(limit);
    if (n !== undefined && (!Number.isInteger(n) || n < 1 || n > AUDIT_MAX_LIMIT))
      throw new HttpException({ error: `limit must be an integer from 1 to ${AUDIT_MAX_LIMIT}` }, 400);
    return listAudit(this.ds, { program: program || undefined, limit: n });
  }
}
