import type { IncomingMessage } from 'node:http';
import { createReadStream } from 'node:fs';
import {
  applyDecorators,
  Body,
  Controller,
  Delete,
  Get,
  HttpException,
  Inject,
  Param,
  Post,
  Query,
  Req,
  StreamableFile,
} from '@nestjs/common';
import {
  ApiBody,
  ApiOperation,
  ApiParam,
  ApiProduces,
  ApiQuery,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import { type Registry, RegistryError, type RunningServices } from '@dsu/pipeline';
import type { TokenActor } from '@dsu/access';
import { Audited } from './access/audit-refusals.interceptor';
import { Consumes, CurrentActor, RequireScope } from './access/decorators';
import { apiSchemas, schemaOf } from './openapi-schemas';
import { RUNNING_SERVICES } from './pipeline.module';

const ERROR_MEANING: Record<number, string> = {
  400: 'the request is malformed (the body or a parameter); `error` says what to send',
  404: 'the program, version, rollout or artifact is not known',
  409: 'the request conflicts with what is there (a version label taken, a version not built, a rollout still running)',
  413: 'the upload is over a limit (DSU_MAX_UPLOAD_BYTES, DSU_ARCHIVE_MAX_*)',
};

/**
 * Documents a route's answer (`status` with the named view, or a list of them, as JSON) and the
 * errors it may answer with, each with the ErrorBody schema; 503 when the gateway service is not
 * running in this process.
 */
function Answers(
  status: 200 | 201,
  view: keyof typeof apiSchemas,
  opts: { list?: boolean; errors?: (400 | 404 | 409 | 413)[] } = {},
) {
  const error = { 'application/json': { schema: schemaOf('ErrorBody') } };
  return applyDecorators(
    ApiProduces('application/json'),
    ApiResponse({
      status,
      description: opts.list ? `a list of ${view}` : view,
      schema: schemaOf(view, opts.list),
    }),
    ...(opts.errors ?? []).map((s) =>
      ApiResponse({ status: s, description: ERROR_MEANING[s], content: error }),
    ),
    ApiResponse({ status: 503, description: 'the gateway is starting or not running here', content: error }),
  );
}

/**
 * Turns the registry's refusals into HTTP errors with a JSON body `{ "error": "<what went wrong and
 * what to do>", "code": "<stable name>" }` (RegistryError's codes; the CLI passes `code` on).
 */
async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof RegistryError)
      throw new HttpException({ error: err.message, code: err.code }, err.status);
    throw err;
  }
}

function bad(message: string, code = 'invalid-request'): never {
  throw new HttpException({ error: message, code }, 400);
}

const str = { type: 'string' } as const;

/**
 * The gateway's HTTP API over the registry (documented at /openapi.json, UI at /docs). Reads need
 * the `read` scope (unless DSU_GATEWAY_READS=open); each write names its scope (AccessGuard).
 */
@ApiTags('registry')
@RequireScope('read')
@Controller()
export class GatewayController {
  constructor(@Inject(RUNNING_SERVICES) private readonly running: RunningServices) {}

  private get registry(): Registry {
    if (!this.running.registry)
      throw new HttpException(
        { error: 'the gateway service is not running in this process', code: 'unavailable' },
        503,
      );
    return this.running.registry;
  }

  @Post('programs')
  @RequireScope('submit')
  @Audited('program.register')
  @Consumes('application/json')
  @ApiOperation({ summary: 'Register a program (idempotent)' })
  @ApiBody({ schema: { type: 'object', required: ['id'], properties: { id: str, description: str } } })
  @Answers(201, 'ProgramRegistrationView', { errors: [400] })
  registerProgram(@Body() body: { id?: unknown; description?: unknown }, @CurrentActor() actor: TokenActor) {
    if (typeof body?.id !== 'string') bad('body must be JSON {"id": "<program id>", "description": "..."}');
    return call(() =>
      this.registry.registerProgram(
        body.id as string,
        typeof body.description === 'string' ? body.description : '',
        actor,
      ),
    );
  }

  @Get('programs')
  @ApiOperation({ summary: 'List registered programs' })
  @Answers(200, 'ProgramView', { list: true })
  programs() {
    return call(() => this.registry.listPrograms());
  }

  @Post('programs/:program/versions/:version')
  @RequireScope('submit')
  @Audited('version.submit')
  @Consumes('application/gzip')
  @ApiOperation({
    summary:
      'Submit a version: the request body is the gzip tarball of its source directory; starts its build',
  })
  @ApiParam({ name: 'program' })
  @ApiParam({ name: 'version' })
  @ApiQuery({ name: 'bin', required: false, description: 'the executable, relative to the sources' })
  @ApiQuery({
    name: 'updatePoint',
    required: false,
    isArray: true,
    description: 'FUNC:entry or FUNC:loop (repeatable)',
  })
  @ApiBody({
    description: 'application/gzip: tar of the source directory',
    schema: { type: 'string', format: 'binary' },
  })
  @Answers(201, 'VersionView', { errors: [400, 404, 409, 413] })
  async submitVersion(
    @Param('program') program: string,
    @Param('version') version: string,
    @Query('bin') bin: string | undefined,
    @Query('updatePoint') updatePoint: string | string[] | undefined,
    @Req() req: IncomingMessage,
    @CurrentActor() actor: TokenActor,
  ) {
    const updatePoints =
      updatePoint === undefined ? [] : Array.isArray(updatePoint) ? updatePoint : [updatePoint];
    // The body streams into the store and the archive checks (limits, tree rules) as it arrives.
    return call(() =>
      this.registry.submitVersion({
        program,
        version,
        source: req,
        bin: bin || null,
        updatePoints,
        by: actor,
      }),
    );
  }

  @Get('programs/:program/versions')
  @ApiOperation({ summary: "A program's versions with their build status and patch" })
  @Answers(200, 'VersionView', { list: true, errors: [404] })
  versions(@Param('program') program: string) {
    return call(() => this.registry.listVersions(program));
  }

  @Delete('programs/:program/versions/:version')
  @RequireScope('submit')
  @Audited('version.delete')
  @ApiOperation({
    summary:
      'Delete a version whose build failed, so its label can be submitted again (409 for a version that is building or built)',
  })
  @Answers(200, 'DeletedVersionView', { errors: [404, 409] })
  deleteVersion(
    @Param('program') program: string,
    @Param('version') version: string,
    @CurrentActor() actor: TokenActor,
  ) {
    return call(() => this.registry.deleteVersion(program, version, actor));
  }

  @Get('programs/:program/versions/:version')
  @ApiOperation({
    summary: 'One version: build status, artifacts, patch from the previous version and its verdict',
  })
  @Answers(200, 'VersionView', { errors: [404] })
  version(@Param('program') program: string, @Param('version') version: string) {
    return call(() => this.registry.getVersion(program, version));
  }

  @Post('programs/:program/patches')
  @RequireScope('submit')
  @Audited('patch.request')
  @Consumes('application/json')
  @ApiOperation({
    summary:
      'Request a patch between two built versions; a patch already requested or generated for the same builds is returned (created: false), not generated again',
  })
  @ApiBody({ schema: { type: 'object', required: ['from', 'to'], properties: { from: str, to: str } } })
  @Answers(201, 'PatchRequestView', { errors: [400, 404, 409] })
  requestPatch(
    @Param('program') program: string,
    @Body() body: { from?: unknown; to?: unknown },
    @CurrentActor() actor: TokenActor,
  ) {
    if (typeof body?.from !== 'string' || typeof body?.to !== 'string')
      bad('body must be JSON {"from": "<version>", "to": "<version>"}');
    return call(() => this.registry.requestPatch(program, body.from as string, body.to as string, actor));
  }

  @Get('patches')
  @ApiOperation({ summary: 'Patches (requested, generated, failed) with their verdicts' })
  @ApiQuery({ name: 'program', required: false })
  @Answers(200, 'PatchView', { list: true })
  patches(@Query('program') program?: string) {
    return call(() => this.registry.listPatches(program));
  }

  @Get('verdicts')
  @ApiOperation({ summary: "The checker's verdicts" })
  @ApiQuery({ name: 'program', required: false })
  @Answers(200, 'VerdictView', { list: true })
  verdicts(@Query('program') program?: string) {
    return call(() => this.registry.listVerdicts(program));
  }

  @Post('rollouts')
  @RequireScope('rollout')
  @Audited('rollout.request')
  @Consumes('application/json')
  @ApiOperation({
    summary: 'Roll a program out to a version on every host whose processes run an older build',
  })
  @ApiBody({
    schema: { type: 'object', required: ['program', 'version'], properties: { program: str, version: str } },
  })
  @Answers(201, 'RolloutRequestView', { errors: [400, 404, 409] })
  rollout(@Body() body: { program?: unknown; version?: unknown }, @CurrentActor() actor: TokenActor) {
    if (typeof body?.program !== 'string' || typeof body?.version !== 'string')
      bad('body must be JSON {"program": "<id>", "version": "<version>"}');
    return call(() => this.registry.requestRollout(body.program as string, body.version as string, actor));
  }

  @Get('rollouts')
  @ApiOperation({ summary: 'Rollouts with their targets and results' })
  @ApiQuery({ name: 'program', required: false })
  @ApiQuery({
    name: 'newest',
    required: false,
    description: 'only this many of the newest rollouts, newest first (1-1000)',
    schema: { type: 'integer', minimum: 1, maximum: 1000 },
  })
  @Answers(200, 'RolloutView', { list: true })
  rollouts(@Query('program') program?: string, @Query('newest') newest?: string) {
    const n = newest === undefined ? undefined : Number(newest);
    if (n !== undefined && !(Number.isInteger(n) && n >= 1 && n <= 1000))
      bad(`newest must be a whole number from 1 to 1000, not '${newest}'`);
    return call(() => this.registry.listRollouts({ program, newest: n }));
  }

  @Get('rollouts/:id')
  @ApiOperation({ summary: 'One rollout' })
  @Answers(200, 'RolloutView', { errors: [404] })
  rolloutById(@Param('id') id: string) {
    return call(() => this.registry.getRollout(id));
  }

  @Post('rollouts/:id/abort')
  @RequireScope('rollout')
  @Audited('rollout.abort')
  @Consumes('application/json')
  @ApiOperation({
    summary:
      'Abort a requested or running rollout: it ends `aborted` with the reason; its open targets become `aborted` and patch requests only it waited for `abandoned` (409 when it already finished)',
  })
  @ApiParam({ name: 'id' })
  @ApiBody({ schema: { type: 'object', required: ['reason'], properties: { reason: str } } })
  @Answers(201, 'AbortedRollout', { errors: [400, 404, 409] })
  abortRollout(
    @Param('id') id: string,
    @Body() body: { reason?: unknown },
    @CurrentActor() actor: TokenActor,
  ) {
    if (typeof body?.reason !== 'string' || body.reason.trim() === '' || body.reason.length > 500)
      bad('body must be JSON {"reason": "<why, 1-500 characters>"}');
    return call(() => this.registry.abortRollout(id, (body.reason as string).trim(), actor));
  }

  @Post('rollouts/:id/retry')
  @RequireScope('rollout')
  @Audited('rollout.retry')
  @ApiOperation({
    summary:
      'Start a finished (aborted, failed, completed) rollout over: a new rollout to the same version, planned afresh (409 while it is still running)',
  })
  @ApiParam({ name: 'id' })
  @Answers(201, 'RolloutRequestView', { errors: [404, 409] })
  retryRollout(@Param('id') id: string, @CurrentActor() actor: TokenActor) {
    return call(() => this.registry.retryRollout(id, actor));
  }

  @Get('results')
  @ApiOperation({ summary: 'Update results, one per process' })
  @ApiQuery({ name: 'rolloutId', required: false })
  @Answers(200, 'ResultView', { list: true })
  results(@Query('rolloutId') rolloutId?: string) {
    return call(() => this.registry.listResults(rolloutId));
  }

  @Get('inventory')
  @ApiOperation({ summary: "Each host's DSU-enabled processes (from the appliers' heartbeats)" })
  @Answers(200, 'InventoryView', { list: true })
  inventory() {
    return call(() => this.registry.listInventory());
  }

  @Get('artifacts/:sha256')
  @ApiOperation({ summary: 'An artifact by its sha256 (application/octet-stream)' })
  @ApiProduces('application/octet-stream')
  @ApiResponse({ status: 200, description: 'the artifact', schema: { type: 'string', format: 'binary' } })
  @ApiResponse({
    status: 400,
    description: 'not a sha256 hex digest',
    content: { 'application/json': { schema: schemaOf('ErrorBody') } },
  })
  @ApiResponse({
    status: 404,
    description: 'not in the store',
    content: { 'application/json': { schema: schemaOf('ErrorBody') } },
  })
  async artifact(@Param('sha256') sha256: string): Promise<StreamableFile> {
    if (!/^[0-9a-f]{64}$/.test(sha256)) bad(`'${sha256}' is not a sha256 hex digest`);
    const store = this.running.infra.store;
    if (!(await store.has(sha256)))
      throw new HttpException(
        { error: `artifact ${sha256} is not in the store`, code: 'artifact-not-found' },
        404,
      );
    return new StreamableFile(createReadStream(store.pathOf(sha256)), { type: 'application/octet-stream' });
  }
}
