export {
  MANIFEST_FORMAT,
  manifestSchema,
  computePatchId,
  validateManifest,
  InvalidManifestError,
  type PatchManifest,
  type ManifestFunction,
  type ManifestFrameMap,
  type ManifestType,
  type ManifestGlobal,
  type FunctionChange,
  type WhenConditions,
} from './manifest';
export {
  SAFETY_RULES,
  findingSchema,
  updatePointsSchema,
  type SafetyRule,
  type Finding,
  type DeniedPoint,
  type SafetyVerdict,
} from './verdict';
export * from './trust';
