export { diffFunctions, type FunctionDiff } from './model-diff';
