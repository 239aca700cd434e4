export { ControlClient, defaultRunDir, socketPath, withControl, listProcesses } from './control-client';
export * from './protocol';
export { applyBundle, applyVerifiedBundle, readBundle, rollbackProcess, type ApplyResult } from './apply-bundle';
