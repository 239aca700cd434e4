export { diffFunctions, type FunctionDiff } from './model-diff';
export { planPatchUnit, type PatchUnit, type PatchUnitFunction, type PatchUnitRequest } from './patch-unit';
export { buildPatch, rebuildPatch, UnsupportedChangeError, type BuildPatchResult } from './build-patch';
export { loadBuild, type BuildInfo, type LoadedBuild, type InstrumentedUnit } from './build-dir';
