export {
  mapFrame,
  whyNotRebuildable,
  type FrameFacts,
  type FrameLocalKind,
  type FrameMapResult,
  type FrameOverride,
  type FunctionFrameMap,
  type LocalMapping,
  type SiteMapping,
} from './frame-map';
export { frameMapEntries, describeFrameMap, type FrameMapEntry } from './frame-map-output';
