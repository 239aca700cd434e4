export { ControlClient, defaultRunDir, socketPath, withControl, listProcesses } from './control-client';
export * from './protocol';
