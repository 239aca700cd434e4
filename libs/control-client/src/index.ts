export { ControlClient, defaultRunDir, socketPath, withControl, listProcesses } from './control-client';
export * from './protocol';
export { applyBundle, readBundle, rollbackProcess, type ApplyResult } from './apply-bundle';
