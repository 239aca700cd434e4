export { ControlClient, defaultRunDir, socketPath, withControl, listProcesses, listPids, statusAll, mapLimit } from './control-client';
export * from './protocol';
export { applyBundle, applyVerifiedBundle, applyOnConnection, readBundle, rollbackProcess, type ApplyResult } from './apply-bundle';
