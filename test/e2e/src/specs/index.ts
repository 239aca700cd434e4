import { multifileSpec } from './multifile';
import { pollserverSpec } from './pollserver';
import type { ProgramSpec } from './types';
import { workerpoolSpec } from './workerpool';

export * from './types';
export { multifileSpec, pollserverSpec, workerpoolSpec };

/** Every fixture program with its behaviour tables, in priority order. */
export const PROGRAM_SPECS: readonly ProgramSpec[] = [pollserverSpec, workerpoolSpec, multifileSpec];
