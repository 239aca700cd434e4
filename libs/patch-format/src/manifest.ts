import { createHash } from 'node:crypto';
import Ajv from 'ajv';

export const MANIFEST_FORMAT = 1;

export type FunctionChange = 'body' | 'signature' | 'added' | 'removed';

export interface ManifestFunction {
  key: string;
  change: FunctionChange;
  /** Symbol of the new implementation inside patch.so (absent for removed functions). */
  newSymbol?: string;
  /** Why the function is in the patch: `body changed`, `uses 'struct conn' concretely …`, `calls 'f', whose signature changed`. */
  reasons?: string[];
}

/** A struct whose layout the patch changes; every live instance is transformed. */
export interface ManifestType {
  name: string;
  oldLayoutHash: string;
  newLayoutHash: string;
  /** Bytes the fields use in the running program and in the new version. */
  oldSize: number;
  newSize: number;
  /** Bytes reserved per instance in the running program (sizeof with the room). */
  capacity: number;
  mode: 'eager' | 'lazy';
  transformer: string;
  /** How each new field gets its value. */
  fields: { field: string; how: string }[];
  instances: {
    heap: string;
    globals: { what: string; symbol: string; offset: number; count: number }[];
    embeddedIn: { container: string; capacity: number; offset: number; count: number }[];
  };
}

export interface ManifestGlobal {
  key: string;
  change: 'added' | 'removed' | 'type' | 'renamed' | 'initializer';
  from?: string;
  note?: string;
}

/**
 * patch.yaml's `when:`: only at these update points; only while none of these functions is
 * active; only when this C expression, compiled into the patch, is true at the update point (with
 * every thread stopped); only within this many milliseconds of the request.
 */
export interface WhenConditions {
  points?: string[];
  inactive?: string[];
  predicate?: string;
  deadlineMs?: number;
}

/**
 * The stack-frame map of one replaced function that may be active when the patch is applied
 * (libs/frame-map): where each frame of the running version resumes in the new code and where
 * each local of the new frame gets its value.
 */
export interface ManifestFrameMap {
  key: string;
  sites: { from: string; to: string; how: 'same' | 'moved' | 'override' }[];
  locals: {
    local: string;
    from: 'old-local' | 'renamed' | 'conversion' | 'initializer' | 'zero' | 'argument';
    oldLocal?: string;
    expression?: string;
    note?: string;
    overridesOld?: boolean;
  }[];
}

/** The body of `manifest.json` (DESIGN.md §5); `patchId` is computed over it and patch.so. */
export interface PatchManifest {
  format: typeof MANIFEST_FORMAT;
  patchId: string;
  program: string;
  from: { buildId: string; version: string };
  to: { buildId: string; version: string };
  /** sha256 of patch.so, which the runtime verifies before loading it. */
  soSha256: string;
  functions: ManifestFunction[];
  types: ManifestType[];
  globals: ManifestGlobal[];
  allowedUpdatePoints: string[];
  /** When the update may happen (patch.yaml `when:`): the analysis and the runtime enforce it. */
  when?: WhenConditions;
  /** Findings of the generator (e.g. instances it cannot find), for the reviewer. */
  notes?: string[];
  /** Frame maps of the replaced functions that can be active (their frames are rebuilt in the new code). */
  frames?: ManifestFrameMap[];
}

const sha256 = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
const version = {
  type: 'object',
  required: ['buildId', 'version'],
  additionalProperties: false,
  properties: { buildId: { type: 'string', minLength: 1 }, version: { type: 'string' } },
} as const;

export const manifestSchema = {
  $id: 'https://dsu.dev/schemas/patch-manifest-1.json',
  type: 'object',
  required: [
    'format',
    'patchId',
    'program',
    'from',
    'to',
    'soSha256',
    'functions',
    'types',
    'globals',
    'allowedUpdatePoints',
  ],
  additionalProperties: false,
  properties: {
    format: { const: MANIFEST_FORMAT },
    patchId: sha256,
    program: { type: 'string', minLength: 1 },
    from: version,
    to: version,
    soSha256: sha256,
    functions: {
      type: 'array',
      items: {
        type: 'object',
        required: ['key', 'change'],
        additionalProperties: false,
        properties: {
          key: { type: 'string', minLength: 1 },
          change: { enum: ['body', 'signature', 'added', 'removed'] },
          newSymbol: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
          reasons: { type: 'array', items: { type: 'string' } },
        },
      },
    },
    types: {
      type: 'array',
      items: {
        type: 'object',
        required: [
          'name',
          'oldLayoutHash',
          'newLayoutHash',
          'oldSize',
          'newSize',
          'capacity',
          'mode',
          'transformer',
          'fields',
          'instances',
        ],
        additionalProperties: false,
        properties: {
          name: { type: 'string', minLength: 1 },
          oldLayoutHash: { type: 'string' },
          newLayoutHash: { type: 'string' },
          oldSize: { type: 'integer', minimum: 0 },
          newSize: { type: 'integer', minimum: 0 },
          capacity: { type: 'integer', minimum: 0 },
          mode: { enum: ['eager', 'lazy'] },
          transformer: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
          fields: {
            type: 'array',
            items: {
              type: 'object',
              required: ['field', 'how'],
              additionalProperties: false,
              properties: { field: { type: 'string' }, how: { type: 'string' } },
            },
          },
          instances: { type: 'object' },
        },
      },
    },
    globals: {
      type: 'array',
      items: {
        type: 'object',
        required: ['key', 'change'],
        additionalProperties: false,
        properties: {
          key: { type: 'string', minLength: 1 },
          change: { enum: ['added', 'removed', 'type', 'renamed', 'initializer'] },
          from: { type: 'string' },
          note: { type: 'string' },
        },
      },
    },
    allowedUpdatePoints: { type: 'array', items: { type: 'string' } },
    when: {
      type: 'object',
      additionalProperties: false,
      properties: {
        points: { type: 'array', items: { type: 'string', minLength: 1 } },
        inactive: { type: 'array', items: { type: 'string', minLength: 1 } },
        predicate: { type: 'string', minLength: 1 },
        deadlineMs: { type: 'integer', minimum: 1 },
      },
    },
    notes: { type: 'array', items: { type: 'string' } },
    frames: {
      type: 'array',
      items: {
        type: 'object',
        required: ['key', 'sites', 'locals'],
        additionalProperties: false,
        properties: {
          key: { type: 'string', minLength: 1 },
          sites: {
            type: 'array',
            items: {
              type: 'object',
              required: ['from', 'to', 'how'],
              additionalProperties: false,
              properties: {
                from: { type: 'string', minLength: 1 },
                to: { type: 'string', minLength: 1 },
                how: { enum: ['same', 'moved', 'override'] },
              },
            },
          },
          locals: {
            type: 'array',
            items: {
              type: 'object',
              required: ['local', 'from'],
              additionalProperties: false,
              properties: {
                local: { type: 'string', minLength: 1 },
                from: { enum: ['old-local', 'renamed', 'conversion', 'initializer', 'zero', 'argument'] },
                oldLocal: { type: 'string' },
                expression: { type: 'string' },
                note: { type: 'string' },
                overridesOld: { type: 'boolean' },
              },
            },
          },
        },
      },
    },
  },
} as const;

const validate = new Ajv({ allErrors: true, strict: true }).compile(manifestSchema);

/** Canonical JSON (sorted keys) so the id does not depend on property order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Patch id = sha256 over the manifest body (without its id) and the bytes of patch.so. */
export function computePatchId(body: Omit<PatchManifest, 'patchId'>, patchSo: Buffer): string {
  const { patchId: _ignored, ...rest } = body as PatchManifest;
  return createHash('sha256').update(canonical(rest)).update('\0').update(patchSo).digest('hex');
}

export class InvalidManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidManifestError';
  }
}

/** Validates a parsed manifest against the schema and, given patch.so, its id and hash. */
export function validateManifest(value: unknown, patchSo?: Buffer): PatchManifest {
  if (!validate(value)) {
    const why = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
    throw new InvalidManifestError(`manifest.json does not match the patch manifest schema: ${why}`);
  }
  const m = value as unknown as PatchManifest;
  if (patchSo) {
    const so = createHash('sha256').update(patchSo).digest('hex');
    if (so !== m.soSha256)
      throw new InvalidManifestError(
        `patch.so hashes to ${so}, but the manifest says ${m.soSha256}: the bundle was altered`,
      );
    const id = computePatchId(m, patchSo);
    if (id !== m.patchId)
      throw new InvalidManifestError(
        `patch id ${m.patchId} does not match the bundle's content (${id}): the bundle was altered`,
      );
  }
  return m;
}
