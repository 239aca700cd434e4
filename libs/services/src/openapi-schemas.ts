// JSON Schemas of the gateway's answers for its OpenAPI document (components.schemas), written
// against the registry's view types (libs/pipeline views.ts), the ones the handlers return:
// `objectOf<View>()` takes exactly the view's fields, so a view that gains, loses or renames a
// field does not compile until its schema follows. The values themselves are checked by
// openapi-responses.spec.ts, which validates real responses against the served document.
import type {
  AbortedRollout,
  DeletedVersionView,
  InventoryView,
  PatchRequestView,
  PatchView,
  ProgramRegistrationView,
  ProgramView,
  ResultView,
  RolloutRequestView,
  RolloutView,
  VerdictView,
  VersionView,
} from '@dsu/pipeline';
import type { AuditView, CreatedToken, TokenView } from '@dsu/access';
import { findingSchema, updatePointsSchema } from '@dsu/patch-format';

type Schema = Record<string, unknown>;

/**
 * An object schema with exactly T's fields (closed: no others), each required unless listed in
 * `optional`. OpenAPI 3.0 spells "or null" as `nullable: true` (see `orNull`).
 */
function objectOf<T>() {
  return (properties: { [K in keyof T]-?: Schema }, optional: (keyof T & string)[] = []): Schema => ({
    type: 'object',
    additionalProperties: false,
    required: Object.keys(properties).filter((k) => !optional.includes(k as keyof T & string)),
    properties,
  });
}

const str: Schema = { type: 'string' };
const int: Schema = { type: 'integer' };
const bool: Schema = { type: 'boolean' };
const time: Schema = { type: 'string', format: 'date-time' };
const strings: Schema = { type: 'array', items: str };
const orNull = (s: Schema): Schema => ({
  ...s,
  nullable: true,
  ...(s.enum ? { enum: [...(s.enum as unknown[]), null] } : {}),
});
const oneOf = (...values: string[]): Schema => ({ type: 'string', enum: values });
const ref = (name: keyof typeof apiSchemas) => ({ $ref: `#/components/schemas/${name}` });

const updatePoints: Schema = { ...updatePointsSchema, additionalProperties: false };

const programView = objectOf<ProgramView>()({ id: str, description: str });

/** Every schema the document names, by component name. */
export const apiSchemas = {
  /** The body of every error answer: what went wrong and what to do, and a stable code. */
  ErrorBody: {
    type: 'object',
    required: ['error'],
    properties: {
      error: { type: 'string', description: 'what went wrong and what to do' },
      code: {
        type: 'string',
        description:
          'a stable name of the refusal (program-not-found, version-exists, invalid-update-point, ...; DESIGN.md §9)',
      },
    },
  },
  ProgramView: programView,
  ProgramRegistrationView: objectOf<ProgramRegistrationView>()({ id: str, description: str, created: bool }),
  VersionView: objectOf<VersionView>()({
    program: str,
    version: str,
    status: oneOf('building', 'built', 'failed'),
    buildId: orNull(str),
    executable: orNull(str),
    executableSha256: orNull(str),
    modelSha256: orNull(str),
    sourceSha256: str,
    error: orNull(str),
    diagnostics: orNull(str),
    durationMs: orNull(int),
    requestedAt: time,
    builtAt: orNull(time),
    patch: orNull(
      objectOf<NonNullable<VersionView['patch']>>()({
        requestId: str,
        id: orNull(str),
        status: oneOf('requested', 'generated', 'failed', 'abandoned'),
        verdict: orNull(oneOf('approved', 'rejected')),
        updatePoints: orNull(updatePoints),
        fromVersion: str,
        error: orNull(str),
      }),
    ),
  }),
  DeletedVersionView: objectOf<DeletedVersionView>()({
    program: str,
    version: str,
    deleted: { type: 'boolean', enum: [true] },
  }),
  PatchRequestView: objectOf<PatchRequestView>()({ requestId: str, created: bool }),
  PatchView: objectOf<PatchView>()({
    requestId: str,
    program: str,
    fromVersion: str,
    toVersion: str,
    fromBuildId: str,
    toBuildId: str,
    status: oneOf('requested', 'generated', 'failed', 'abandoned'),
    patchId: orNull(str),
    bundleSha256: orNull(str),
    functions: {
      type: 'array',
      items: objectOf<PatchView['functions'][number]>()({ key: str, change: str }),
    },
    types: orNull({
      type: 'array',
      items: objectOf<NonNullable<PatchView['types']>[number]>()({
        name: str,
        oldSize: int,
        newSize: int,
        mode: oneOf('eager', 'lazy'),
        fields: {
          type: 'array',
          items: objectOf<NonNullable<PatchView['types']>[number]['fields'][number]>()({ field: str, how: str }),
        },
      }),
    }),
    globals: orNull({
      type: 'array',
      items: objectOf<NonNullable<PatchView['globals']>[number]>()({ key: str, change: str, note: str }, ['note']),
    }),
    error: orNull(str),
    reasons: strings,
    verdict: orNull(oneOf('approved', 'rejected')),
    requestedAt: time,
    generatedAt: orNull(time),
  }),
  VerdictView: objectOf<VerdictView>()({
    patchId: str,
    program: str,
    bundleSha256: str,
    verdict: oneOf('approved', 'rejected'),
    findings: { type: 'array', items: findingSchema },
    updatePoints: orNull(updatePoints),
    signature: orNull(str),
    keyId: orNull(str),
    checkedAt: time,
  }),
  RolloutRequestView: objectOf<RolloutRequestView>()({ rolloutId: str, retryOf: str }, ['retryOf']),
  RolloutView: objectOf<RolloutView>()({
    rolloutId: str,
    program: str,
    version: str,
    status: oneOf('requested', 'running', 'completed', 'failed', 'aborted'),
    notes: strings,
    requestedAt: time,
    completedAt: orNull(time),
    patchId: orNull(str),
    patchIds: strings,
    targets: {
      type: 'array',
      items: objectOf<RolloutView['targets'][number]>()({
        host: str,
        pid: int,
        patchId: orNull(str),
        reported: bool,
        state: oneOf('waiting', 'commanded', 'reported', 'failed', 'aborted'),
        fromBuildId: orNull(str),
        reason: orNull(str),
      }),
    },
    results: {
      type: 'array',
      items: objectOf<RolloutView['results'][number]>()({
        host: str,
        pid: int,
        outcome: str,
        pauseUs: int,
        updatePoint: orNull(str),
        reasons: strings,
        patchId: orNull(str),
        buildId: orNull(str),
        reportedAt: time,
        instances: orNull(int),
      }),
    },
  }),
  AbortedRollout: objectOf<AbortedRollout>()({
    rolloutId: str,
    status: oneOf('aborted'),
    abortedTargets: int,
    abandonedPatches: strings,
  }),
  ResultView: objectOf<ResultView>()({
    rolloutId: str,
    host: str,
    pid: int,
    program: str,
    patchId: orNull(str),
    outcome: str,
    pauseUs: int,
    updatePoint: orNull(str),
    reasons: strings,
    buildId: orNull(str),
    eventId: str,
    reportedAt: time,
    instances: orNull(int),
    transformUs: orNull(int),
  }),
  InventoryView: objectOf<InventoryView>()({
    host: str,
    runDir: str,
    seenAt: time,
    stale: bool,
    processes: {
      type: 'array',
      items: objectOf<InventoryView['processes'][number]>()({
        pid: int,
        program: str,
        buildId: str,
        baseBuildId: str,
        patches: strings,
        version: orNull(str),
      }),
    },
  }),
  TokenView: objectOf<TokenView>()({
    id: str,
    name: str,
    scopes: strings,
    createdAt: time,
    createdBy: str,
    lastUsedAt: orNull(time),
    revoked: bool,
    revokedAt: orNull(time),
  }),
  CreatedToken: objectOf<CreatedToken>()({
    id: str,
    name: str,
    scopes: { type: 'array', items: oneOf('submit', 'rollout', 'read', 'admin') },
    createdAt: time,
    token: { type: 'string', description: 'the token itself: shown this once' },
  }),
  RevokedToken: objectOf<{ id: string; name: string; revokedAt: string }>()({
    id: str,
    name: str,
    revokedAt: time,
  }),
  AuditView: objectOf<AuditView>()({
    seq: int,
    at: time,
    actor: objectOf<AuditView['actor']>()({ kind: str, id: str, name: str }),
    action: str,
    program: orNull(str),
    target: orNull(str),
    outcome: str,
    detail: { type: 'object' },
  }),
} satisfies Record<string, Schema>;

/**
 * The answers of routes whose controllers live elsewhere (libs/services/src/access), declared
 * here with the other schemas: path -> method -> [status, view, list].
 */
export const otherAnswers: Record<string, Record<string, [number, keyof typeof apiSchemas, boolean]>> = {
  '/tokens': { post: [201, 'CreatedToken', false], get: [200, 'TokenView', true] },
  '/tokens/{id}': { delete: [200, 'RevokedToken', false] },
  '/audit': { get: [200, 'AuditView', true] },
};

/** A response schema: one named view, or a list of them. */
export const schemaOf = (name: keyof typeof apiSchemas, list = false): Schema =>
  list ? { type: 'array', items: ref(name) } : ref(name);
