import Ajv, { type ValidateFunction } from 'ajv';
import { InvalidEventError, type CloudEvent } from './envelope';
import { findingSchema, updatePointsSchema, type Finding, type SafetyVerdict } from '@dsu/patch-format';
import { parseEventType, Topics } from './topics';

/**
 * Payload schemas of the pipeline's events, one per `type` (topic + schema version). A consumer
 * validates the payload before its handler runs; an unknown version or an invalid payload is a
 * permanent failure, so it goes to the dead-letter topic at once instead of being retried.
 * Adding a field that consumers may ignore keeps the version; anything else is a new `.vN`.
 */

export interface BuildRef {
  version: string;
  buildId: string;
}
export type { Finding } from '@dsu/patch-format';

export interface BuildRequestedV1 {
  program: string;
  version: string;
  sourceSha256: string;
  bin: string | null;
  updatePoints: string[];
  /**
   * Program model of the program's latest built version, if any: the new build keeps the room
   * its structs reserved (their capacities), so patches from this build fit processes of that
   * lineage. Optional (consumers may ignore it: the build then picks fresh capacities).
   */
  layoutFromModelSha256?: string | null;
}
export interface BuildCompletedV1 {
  program: string;
  version: string;
  buildId: string;
  executable: string;
  executableSha256: string;
  modelSha256: string;
  /** The whole build directory (tar): what the patcher needs to generate a patch. */
  buildDirSha256: string;
  durationMs: number;
}
export interface BuildFailedV1 {
  program: string;
  version: string;
  error: string;
  diagnostics: string;
}
export interface PatchRequestedV1 {
  program: string;
  requestId: string;
  from: BuildRef & { buildDirSha256: string };
  to: BuildRef & { buildDirSha256: string };
}
export interface PatchGeneratedV1 {
  program: string;
  requestId: string;
  patchId: string;
  bundleSha256: string;
  from: BuildRef;
  to: BuildRef;
  functions: { key: string; change: string }[];
  /** Structs whose layout the patch changes, and how each new field gets its value (absent before). */
  types?: PatchTypeChangeV1[];
  /** Globals the patch adds, removes or changes (absent before). */
  globals?: { key: string; change: string; note?: string }[];
}
export interface PatchTypeChangeV1 {
  name: string;
  oldSize: number;
  newSize: number;
  mode: 'eager' | 'lazy';
  fields: { field: string; how: string }[];
}
export interface PatchFailedV1 {
  program: string;
  requestId: string;
  error: string;
  reasons: string[];
}
export interface PatchVerdictV1 {
  program: string;
  patchId: string;
  bundleSha256: string;
  from: BuildRef;
  to: BuildRef;
  verdict: 'approved' | 'rejected';
  findings: Finding[];
  /** The update points the safety analysis allows and denies (absent from older checkers). */
  updatePoints?: SafetyVerdict['updatePoints'];
  /** Ed25519 signature (base64) over `approvalMessage(...)`; null when rejected. */
  signature: string | null;
  keyId: string | null;
}
export interface RolloutRequestedV1 {
  rolloutId: string;
  program: string;
  version: string;
}
export interface UpdateCommandV1 {
  rolloutId: string;
  host: string;
  program: string;
  patchId: string;
  bundleSha256: string;
  fromBuildId: string;
  toBuildId: string;
  signature: string;
  keyId: string;
  pids: number[];
  timeoutMs: number;
}
export type UpdateOutcomeV1 = 'applied' | 'refused' | 'timeout' | 'failed';
export interface UpdateResultV1 {
  rolloutId: string;
  host: string;
  pid: number;
  program: string;
  patchId: string | null;
  outcome: UpdateOutcomeV1;
  pauseUs: number;
  updatePoint: string | null;
  reasons: string[];
  buildId: string | null;
  /** Data updates: instances transformed at the update point (absent for code-only patches). */
  instances?: number;
  /** Data updates: how long the transformation took, in µs. */
  transformUs?: number;
}
/**
 * `dsu.update.result.v2`: the results of one update command's processes, in batches (an applier
 * reports as processes finish, several per event), so the registry records each batch in one
 * transaction. Every item is a whole `UpdateResultV1` with the batch's rolloutId, host and program.
 */
export interface UpdateResultsV2 {
  rolloutId: string;
  host: string;
  program: string;
  results: UpdateResultV1[];
}
export interface InventoryProcessV1 {
  pid: number;
  program: string;
  /** The build the process runs now: its own, or the target build of its last patch. */
  buildId: string;
  baseBuildId: string;
  patches: string[];
}
export interface AgentHeartbeatV1 {
  host: string;
  runDir: string;
  processes: InventoryProcessV1[];
}

const str = { type: 'string', minLength: 1 } as const;
const sha = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
const nullableStr = { type: ['string', 'null'] } as const;
const obj = (properties: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  type: 'object',
  required: Object.keys(properties),
  properties,
  additionalProperties: true,
  ...extra,
});
const buildRef = obj({ version: str, buildId: str });
const buildRefWithDir = obj({ version: str, buildId: str, buildDirSha256: sha });
const finding = findingSchema;
const strings = { type: 'array', items: { type: 'string' } } as const;
/** A schema with more properties that may be absent (added to a payload version later). */
const withOptional = (schema: ReturnType<typeof obj>, optional: Record<string, unknown>) => ({
  ...schema,
  properties: { ...(schema.properties as Record<string, unknown>), ...optional },
});

const updateResultV1 = withOptional(
  obj({
    rolloutId: str,
    host: str,
    pid: { type: 'integer', minimum: 1 },
    program: str,
    patchId: nullableStr,
    outcome: { enum: ['applied', 'refused', 'timeout', 'failed'] },
    pauseUs: { type: 'number', minimum: 0 },
    updatePoint: nullableStr,
    reasons: strings,
    buildId: nullableStr,
  }),
  { instances: { type: 'integer', minimum: 0 }, transformUs: { type: 'number', minimum: 0 } },
);

/** Every known event type with its payload schema. */
export const payloadSchemas: Record<string, object> = {
  [`${Topics.buildRequested}.v1`]: obj({
    program: str,
    version: str,
    sourceSha256: sha,
    bin: nullableStr,
    updatePoints: strings,
  }),
  [`${Topics.buildCompleted}.v1`]: obj({
    program: str,
    version: str,
    buildId: str,
    executable: str,
    executableSha256: sha,
    modelSha256: sha,
    buildDirSha256: sha,
    durationMs: { type: 'number', minimum: 0 },
  }),
  [`${Topics.buildFailed}.v1`]: obj({
    program: str,
    version: str,
    error: str,
    diagnostics: { type: 'string' },
  }),
  [`${Topics.patchRequested}.v1`]: obj({
    program: str,
    requestId: str,
    from: buildRefWithDir,
    to: buildRefWithDir,
  }),
  [`${Topics.patchGenerated}.v1`]: withOptional(
    obj({
      program: str,
      requestId: str,
      patchId: str,
      bundleSha256: sha,
      from: buildRef,
      to: buildRef,
      functions: { type: 'array', items: obj({ key: str, change: str }) },
    }),
    {
      types: {
        type: 'array',
        items: obj({
          name: str,
          oldSize: { type: 'integer', minimum: 0 },
          newSize: { type: 'integer', minimum: 0 },
          mode: { enum: ['eager', 'lazy'] },
          fields: { type: 'array', items: obj({ field: str, how: { type: 'string' } }) },
        }),
      },
      globals: { type: 'array', items: withOptional(obj({ key: str, change: str }), { note: { type: 'string' } }) },
    },
  ),
  [`${Topics.patchFailed}.v1`]: obj({ program: str, requestId: str, error: str, reasons: strings }),
  [`${Topics.patchVerdict}.v1`]: withOptional(
    obj({
      program: str,
      patchId: str,
      bundleSha256: sha,
      from: buildRef,
      to: buildRef,
      verdict: { enum: ['approved', 'rejected'] },
      findings: { type: 'array', items: finding },
      signature: nullableStr,
      keyId: nullableStr,
    }),
    { updatePoints: updatePointsSchema },
  ),
  [`${Topics.rolloutRequested}.v1`]: obj({ rolloutId: str, program: str, version: str }),
  [`${Topics.updateCommand}.v1`]: obj({
    rolloutId: str,
    host: str,
    program: str,
    patchId: str,
    bundleSha256: sha,
    fromBuildId: str,
    toBuildId: str,
    signature: str,
    keyId: str,
    pids: { type: 'array', minItems: 1, items: { type: 'integer', minimum: 1 } },
    timeoutMs: { type: 'integer', minimum: 1 },
  }),
  [`${Topics.updateResult}.v1`]: updateResultV1,
  [`${Topics.updateResult}.v2`]: obj({
    rolloutId: str,
    host: str,
    program: str,
    results: { type: 'array', minItems: 1, items: updateResultV1 },
  }),
  [`${Topics.agentHeartbeat}.v1`]: obj({
    host: str,
    runDir: { type: 'string' },
    processes: {
      type: 'array',
      items: obj({
        pid: { type: 'integer', minimum: 1 },
        program: str,
        buildId: str,
        baseBuildId: str,
        patches: strings,
      }),
    },
  }),
};

/** Topics whose producers write a version other than v1 (consumers still accept the older ones). */
const CURRENT_VERSION: Record<string, number> = { [Topics.updateResult]: 2 };

/** The event type a producer writes to a topic today. */
export function currentType(topic: string): string {
  return `${topic}.v${CURRENT_VERSION[topic] ?? 1}`;
}

const ajv = new Ajv({ allErrors: true, strict: false });
const validators = new Map<string, ValidateFunction>(
  Object.entries(payloadSchemas).map(([t, s]) => [t, ajv.compile(s)]),
);

/**
 * Checks that an event's type belongs to the topic it arrived on, that its schema version is
 * known, and that its payload matches; throws InvalidEventError saying which of these failed.
 */
export function validatePayload(event: CloudEvent, topic?: string): void {
  const parsed = parseEventType(event.type);
  if (!parsed) throw new InvalidEventError(`event type '${event.type}' has no schema version suffix (.vN)`);
  if (topic !== undefined && parsed.topic !== topic) {
    throw new InvalidEventError(
      `event of type '${event.type}' arrived on topic '${topic}'; it belongs on '${parsed.topic}'`,
    );
  }
  const validate = validators.get(event.type);
  if (!validate) {
    const known = [...validators.keys()].filter((t) => t.startsWith(parsed.topic + '.v'));
    throw new InvalidEventError(
      `unknown schema version: this consumer understands ${known.join(', ') || 'no version'} of '${parsed.topic}', not '${event.type}'`,
    );
  }
  if (!validate(event.data)) {
    const why = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
    throw new InvalidEventError(`payload of ${event.type} ${event.id} is invalid: ${why}`);
  }
}
