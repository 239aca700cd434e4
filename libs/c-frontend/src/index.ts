export * from './program-model';
export { parseLineMarkers, regionAt, type MarkedRegion } from './line-markers';
export { findClang } from './clang';
