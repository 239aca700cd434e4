export { pipelineConfigFromEnv, type PipelineConfig } from './shared/config';
export { openInfra, type PipelineInfra } from './shared/infra';
export { packDir, unpackTo, extractArchive, inspectArchive, type ArchiveSummary } from './shared/tarball';
export {
  archiveLimitsFromEnv,
  ArchiveRefusedError,
  INTERNAL_ARCHIVE_LIMITS,
  type ArchiveLimits,
} from './shared/archive-limits';
export { receiveArchive, type ReceivedArchive } from './shared/receive-archive';
export { jsonLog } from './shared/log';
// Signing moved to @dsu/patch-format (with the trust store, light enough for dsu apply); re-exported
// here so the pipeline's public names stay.
export {
  approvalMessage,
  loadOrCreateSigningKey,
  loadTrustedKey,
  signApproval,
  verifyApproval,
  keyIdOf,
  type SigningKey,
} from '@dsu/patch-format';
export { BoundedText } from './shared/bounded-text';
export { compileVersion, compilerSubscription, COMPILER } from './compile/compile-version';
export { generatePatch, patcherSubscription, PATCHER } from './generate-patch/generate-patch';
export { checkBundle, type BundleCheck } from './check/check-bundle';
export { checkPatch, checkerSubscription, CHECKER } from './check/check-patch';
export { ApplierAgent, inventory, APPLIER } from './apply-agent/applier-agent';
export { Registry } from './registry/registry';
export { GATEWAY } from './registry/context';
export { staleAfter } from './registry/inventory';
export type { SubmitVersion } from './registry/commands';
export type { VersionStates } from './registry/queries';
// The gateway's HTTP answers, one declaration for the gateway and its clients (the CLI).
export type {
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
} from './registry/views';
export { RegistryError } from './registry/errors';
export { BuildDeadline } from './registry/build-deadline';
export { RequestDeadlines } from './registry/request-deadlines';
export { startServices, SERVICE_NAMES, type ServiceName, type RunningServices } from './pipeline';
