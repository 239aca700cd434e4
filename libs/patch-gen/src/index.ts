export { diffFunctions, type FunctionDiff } from './model-diff';
export { planPatchUnit, type PatchUnit, type PatchUnitFunction, type PatchUnitRequest } from './patch-unit';
export {
  buildPatch,
  rebuildPatch,
  UnsupportedChangeError,
  PatchCompileError,
  DRAFT_MANIFEST,
  type BuildPatchResult,
  type BuildPatchOptions,
} from './build-patch';
export { planContents, type PatchContents, type GlobalChange } from './plan-contents';
export { loadBuild, type BuildInfo, type LoadedBuild, type InstrumentedUnit } from './build-dir';
export {
  diffTypes,
  findInstances,
  transformerSource,
  type DataSpec,
  type TypeSpec,
  type TypeChange,
  type DataDiff,
} from './data-patch';
