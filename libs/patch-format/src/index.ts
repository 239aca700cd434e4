export {
  MANIFEST_FORMAT,
  manifestSchema,
  computePatchId,
  validateManifest,
  InvalidManifestError,
  type PatchManifest,
  type ManifestFunction,
  type ManifestType,
  type ManifestGlobal,
  type FunctionChange,
} from './manifest';
