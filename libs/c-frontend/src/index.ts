export * from './program-model';
export { parseLineMarkers, regionAt, type MarkedRegion } from './line-markers';
export { findClang } from './clang';
export { analyzeUnit } from './analyze';
export { layoutHash } from './type-layouts';
export { normalizeType } from './ast-helpers';
export { DEFAULT_BLOCKING_FUNCTIONS, RAW_IO_FUNCTIONS, LAYOUT_NEUTRAL_FUNCTIONS } from './known-functions';
export type {
  AnalyzeOptions,
  ByteRange,
  CallSite,
  FunctionDeclaration,
  VariableReference,
  FunctionReference,
  MarkerCall,
  NamedCall,
  StaticVariable,
  UnitAnalysis,
  UnitFunction,
  VariableDeclaration,
  RecordInfo,
  NestedDefinition,
  AllocSite,
  RawUse,
  ObjectUses,
} from './unit-analysis';
export { buildProgramModel, summarizeUnit, type UnitSummary } from './build-model';
export { tokenize, scanTokens, hashTokens, type Token } from './tokenizer';
export { splitFlags, takesValue, codegenFlags, dependencyFlags } from './flags';
export {
  frameSites,
  type FrameLocal,
  type FrameSite,
  type FrameSiteKind,
  type FunctionFrameInfo,
} from './frame-sites';
