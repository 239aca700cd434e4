export {
  MANIFEST_FORMAT,
  manifestSchema,
  computePatchId,
  validateManifest,
  InvalidManifestError,
  type PatchManifest,
  type ManifestFunction,
  type FunctionChange,
} from './manifest';
