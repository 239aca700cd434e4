export { classifyInvocation, type CompilerInvocation, type InvocationKind } from './compiler-invocation';
export { applyEdits, wrapEdits, OverlappingEditsError, type Edit } from './edits';
export { declaratorEnd, findToken, outermostLoopBodyStart } from './c-scan';
export { localStaticName, renameLocalStatic, oneLine, completeArrayEdit, textWithEdits } from './local-statics';
export {
  planUnit,
  parseUpdatePointSpec,
  placeUpdatePoints,
  configuredPoints,
  unitFrames,
  quiescenceFreeFunctions,
  wrapBlockingCalls,
  mangleKey,
  slotName,
  implName,
  addressName,
  staticSymbol,
  slotCall,
  stubDefinition,
  cString,
  IMPL_DIAGNOSTICS,
  PRELUDE,
  type ConfiguredUpdatePoint,
  type PlannedFunction,
  type UnitPlan,
  type UnitPlanOptions,
} from './unit-plan';
export { runDsuCc, compileUnit, linkProgram, type ObjectSidecar, type DsuCcContext } from './dsu-cc';
export { startCompileServer, runWithCompileServer, compileClientPath, decodeCompileRequest, type CompileServer, type CompileRequest } from './compile-server';
export { buildVersion, dsuCcPath, type BuildVersionOptions, type BuiltVersion } from './build-version';
export {
  probeSandbox,
  sandboxModeFromEnv,
  SANDBOX_UID,
  type SandboxMode,
  type SandboxOptions,
} from './build-sandbox';
export { locateRuntime, type RuntimeLocation } from './runtime-location';
export {
  planData,
  parseSlopSpec,
  parseCapacities,
  typeId,
  typeIdLiteral,
  typeMangle,
  lazyCheckName,
  DATA_PRELUDE,
  type DataPlan,
  type DataPlanOptions,
} from './data-plan';
export {
  planFrames,
  FRAME_PRELUDE,
  type FrameCodeOptions,
  type FrameFunction,
  type FrameLocalFact,
  type FramePlan,
  type InsertedPoint,
} from './frame-code';
