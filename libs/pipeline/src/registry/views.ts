// The registry's answers as the gateway sends them over HTTP: declared once here, so the gateway
// and its clients (the CLI imports them type-only) cannot drift apart. Types only: importing this
// module loads nothing.
import type { Finding, SafetyVerdict } from '@dsu/patch-format';
import type { PatchTypeChange, RolloutTargetState } from '@dsu/persistence';

export type { AbortedRollout } from './abort-rollout';

/** A registered program (GET /programs). */
export interface ProgramView {
  id: string;
  description: string;
}

/** The answer to POST /programs: `created` is false when the id was already registered (idempotent). */
export interface ProgramRegistrationView extends ProgramView {
  created: boolean;
}

/**
 * A submitted version, its build and the patch to it from the previous version (GET
 * /programs/:p/versions[/:v]): what `dsu submit` polls until the build and the verdict are in.
 */
export interface VersionView {
  program: string;
  version: string;
  status: string;
  buildId: string | null;
  executable: string | null;
  executableSha256: string | null;
  modelSha256: string | null;
  sourceSha256: string;
  error: string | null;
  diagnostics: string | null;
  durationMs: number | null;
  requestedAt: string;
  builtAt: string | null;
  /** The patch from the previous version, once requested; null when this is the first version. */
  patch: {
    requestId: string;
    id: string | null;
    status: string;
    verdict: string | null;
    /** Where the patch may apply, by the checker's analysis (null before it was checked). */
    updatePoints: SafetyVerdict['updatePoints'] | null;
    fromVersion: string;
    error: string | null;
  } | null;
}

/** The answer to DELETE /programs/:p/versions/:v: the failed version that was removed. */
export interface DeletedVersionView {
  program: string;
  version: string;
  deleted: true;
}

/** The answer to POST /programs/:p/patches: `created` is false when an existing request was reused. */
export interface PatchRequestView {
  requestId: string;
  created: boolean;
}

/** A patch request and where it stands, with the checker's verdict once in (GET /patches). */
export interface PatchView {
  requestId: string;
  program: string;
  fromVersion: string;
  toVersion: string;
  fromBuildId: string;
  toBuildId: string;
  status: 'requested' | 'generated' | 'failed' | 'abandoned';
  patchId: string | null;
  bundleSha256: string | null;
  functions: { key: string; change: string }[];
  /** Structs whose layout it changes and how each new field gets its value; null when not known. */
  types: PatchTypeChange[] | null;
  /** Globals it adds, removes or changes; null when not known. */
  globals: { key: string; change: string; note?: string }[] | null;
  error: string | null;
  reasons: string[];
  verdict: 'approved' | 'rejected' | null;
  requestedAt: string;
  generatedAt: string | null;
}

/** The checker's verdict on a bundle, as stored (GET /verdicts). */
export interface VerdictView {
  patchId: string;
  program: string;
  bundleSha256: string;
  verdict: 'approved' | 'rejected';
  findings: Finding[];
  /** The update points the analysis allows and denies; null for verdicts stored before it did. */
  updatePoints: SafetyVerdict['updatePoints'] | null;
  signature: string | null;
  keyId: string | null;
  checkedAt: string;
}

/** The answer to POST /rollouts and /rollouts/:id/retry (`retryOf`: the rollout started over). */
export interface RolloutRequestView {
  rolloutId: string;
  retryOf?: string;
}

/**
 * A rollout with its targets and the results reported so far (GET /rollouts[/:id]): what
 * `dsu rollout` polls until it is completed, failed or aborted.
 */
export interface RolloutView {
  rolloutId: string;
  program: string;
  version: string;
  status: string;
  notes: string[];
  requestedAt: string;
  completedAt: string | null;
  /** The patch of the first commanded target (every patch: `patchIds`). */
  patchId: string | null;
  patchIds: string[];
  targets: {
    host: string;
    pid: number;
    patchId: string | null;
    reported: boolean;
    state: RolloutTargetState;
    fromBuildId: string | null;
    reason: string | null;
  }[];
  results: {
    host: string;
    pid: number;
    outcome: string;
    pauseUs: number;
    updatePoint: string | null;
    reasons: string[];
    patchId: string | null;
    buildId: string | null;
    reportedAt: string;
    /** Data updates: instances transformed (null for code-only patches). */
    instances: number | null;
  }[];
}

/** One process's reported update outcome, as stored (GET /results). */
export interface ResultView {
  rolloutId: string;
  host: string;
  pid: number;
  program: string;
  patchId: string | null;
  outcome: string;
  pauseUs: number;
  updatePoint: string | null;
  reasons: string[];
  buildId: string | null;
  /** The id of the `dsu.update.result` event it came in. */
  eventId: string;
  reportedAt: string;
  /** Data updates: instances transformed at the update point and how long it took (µs); else null. */
  instances: number | null;
  transformUs: number | null;
}

/** A host's DSU-enabled processes from its applier's last heartbeat (GET /inventory). */
export interface InventoryView {
  host: string;
  runDir: string;
  seenAt: string;
  /** No heartbeat for three heartbeat periods (at least 10 s): its processes may have changed since. */
  stale: boolean;
  processes: {
    pid: number;
    program: string;
    buildId: string;
    baseBuildId: string;
    patches: string[];
    /** The registry's version label of `buildId`; null for a build it does not know. */
    version: string | null;
  }[];
}
