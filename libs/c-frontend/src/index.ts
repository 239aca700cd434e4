export * from './program-model';
export { parseLineMarkers, regionAt, type MarkedRegion } from './line-markers';
export { findClang } from './clang';
export {
  analyzeUnit,
  layoutHash,
  normalizeType,
  DEFAULT_BLOCKING_FUNCTIONS,
  type AnalyzeOptions,
  type ByteRange,
  type CallSite,
  type FunctionDeclaration,
  type VariableReference,
  type FunctionReference,
  type MarkerCall,
  type NamedCall,
  type StaticVariable,
  type UnitAnalysis,
  type UnitFunction,
  type VariableDeclaration,
  type RecordInfo,
  type AllocSite,
  type RawUse,
  type ObjectUses,
  RAW_IO_FUNCTIONS,
  LAYOUT_NEUTRAL_FUNCTIONS,
} from './analyze';
export { buildProgramModel, summarizeUnit, type UnitSummary } from './build-model';
export { tokenize, scanTokens, hashTokens, type Token } from './tokenizer';
export { splitFlags, takesValue, codegenFlags, dependencyFlags } from './flags';
