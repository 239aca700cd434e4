import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { defaultRunDir } from '@dsu/control-client';
import { sandboxModeFromEnv, type SandboxMode } from '@dsu/instrument';
import { type KeyPaths, keyPathsFromEnv } from '@dsu/patch-format';
import { dsuHome } from '@dsu/persistence';
import { type ArchiveLimits, archiveLimitsFromEnv } from './archive-limits';

/** Settings of the pipeline services, all from the environment (DESIGN.md §10). */
export interface PipelineConfig {
  home: string;
  artifactsDir: string;
  runDir: string;
  hostId: string;
  heartbeatMs: number;
  buildTimeoutMs: number;
  /** Compiler diagnostics kept per build (bytes); the rest is cut from the middle. */
  buildOutputLimit: number;
  /** A build writing more output than this (bytes) is stopped and fails. */
  buildOutputMax: number;
  /**
   * A version still `building` this long after it was submitted is ended `failed` by the
   * registry (a build request that was dead-lettered, or a compiler that never answered).
   */
  buildDeadlineMs: number;
  /**
   * A patch request with no result (`DSU_PATCH_DEADLINE_MS` after it was made) is ended
   * `failed`, and the rollout targets waiting for it with it (a patcher or checker that is not
   * running, or a request that was dead-lettered).
   */
  patchDeadlineMs: number;
  /**
   * A rollout still running `DSU_ROLLOUT_DEADLINE_MS` after it was requested is ended `failed`:
   * each process still waiting for its patch or its host's result is failed with the reason.
   */
  rolloutDeadlineMs: number;
  /** How long a starting service waits for PostgreSQL and Kafka (`DSU_STARTUP_TIMEOUT_MS`). */
  startupTimeoutMs: number;
  /** How the compiler isolates builds (`DSU_BUILD_SANDBOX`: required, auto, off); docs/build-sandbox.md. */
  buildSandbox: SandboxMode;
  /** What a sandboxed build must not see: DSU_HOME, the artifact store, key locations set apart. */
  buildHidden: string[];
  /** Limits of submitted source archives (gateway upload and compiler unpack). */
  archiveLimits: ArchiveLimits;
  /** Largest request body the gateway accepts for a source upload (compressed bytes). */
  uploadMaxBytes: number;
  applyTimeoutMs: number;
  /** Where appliers download bundles; unset: the local artifact directory. */
  gatewayUrl?: string;
  /** Bearer token for those downloads (`DSU_ARTIFACTS_TOKEN`, else `DSU_TOKEN`): a `read` token. */
  gatewayToken?: string;
  /** The checker's signing key and the trust store appliers verify approvals with. */
  keys: KeyPaths;
}

function positive(env: NodeJS.ProcessEnv, name: string, dflt: number): number {
  const raw = env[name];
  const v = raw === undefined || raw === '' ? dflt : Number(raw);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} must be a positive integer, got '${raw}'`);
  return v;
}

export function pipelineConfigFromEnv(env: NodeJS.ProcessEnv = process.env): PipelineConfig {
  const home = dsuHome(env);
  return {
    home,
    artifactsDir: env.DSU_ARTIFACTS_DIR ?? join(home, 'artifacts'),
    runDir: defaultRunDir(env),
    hostId: env.DSU_HOST_ID || hostname(),
    heartbeatMs: positive(env, 'DSU_HEARTBEAT_MS', 1000),
    buildTimeoutMs: positive(env, 'DSU_BUILD_TIMEOUT_MS', 10 * 60_000),
    buildOutputLimit: positive(env, 'DSU_BUILD_OUTPUT_LIMIT', 256 * 1024),
    buildOutputMax: positive(env, 'DSU_BUILD_OUTPUT_MAX', 32 * 1024 * 1024),
    buildDeadlineMs: positive(
      env,
      'DSU_BUILD_DEADLINE_MS',
      Math.max(30 * 60_000, 3 * positive(env, 'DSU_BUILD_TIMEOUT_MS', 10 * 60_000)),
    ),
    patchDeadlineMs: positive(env, 'DSU_PATCH_DEADLINE_MS', 30 * 60_000),
    rolloutDeadlineMs: positive(env, 'DSU_ROLLOUT_DEADLINE_MS', 60 * 60_000),
    startupTimeoutMs: positive(env, 'DSU_STARTUP_TIMEOUT_MS', 10 * 60_000),
    buildSandbox: sandboxModeFromEnv(env, 'DSU_BUILD_SANDBOX', 'required'),
    buildHidden: [
      home,
      env.DSU_ARTIFACTS_DIR,
      env.DSU_SIGNING_KEY && dirname(env.DSU_SIGNING_KEY),
      env.DSU_TRUSTED_KEYS_DIR,
      ...(env.DSU_TRUSTED_KEY ?? '').split(/[,:]/),
    ].filter((p): p is string => !!p),
    archiveLimits: archiveLimitsFromEnv(env),
    uploadMaxBytes: positive(env, 'DSU_MAX_UPLOAD_BYTES', 256 * 1024 * 1024),
    applyTimeoutMs: positive(env, 'DSU_APPLY_TIMEOUT_MS', 5000),
    gatewayUrl: env.DSU_ARTIFACTS_URL || undefined,
    gatewayToken: env.DSU_ARTIFACTS_TOKEN || env.DSU_TOKEN || undefined,
    keys: keyPathsFromEnv(env),
  };
}
