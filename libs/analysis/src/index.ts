export { checkSafety, POINT_RULES, type PointRule } from './check-safety';
export { type SafetyInput } from './safety-context';
export type { WhenConditions } from '@dsu/patch-format';
export { removedReferenced } from './removed-referenced';
export { updatePointSites, type PointSite } from './update-sites';
export type { Finding, SafetyVerdict, DeniedPoint } from '@dsu/patch-format';
export { functionsOnStacksAtPoints } from './stack-functions';
export { frameMapLines } from './frame-rebuild';
