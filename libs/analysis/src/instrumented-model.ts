import type { ProgramModel } from '@dsu/c-frontend';

/**
 * A build's program model with the part of dsu-cc's instrumentation record the rules read (the
 * whole record: libs/patch-gen build-dir.ts InstrumentedUnit): the update points it placed and
 * its stack-frame facts. Models without it (made by hand, or before frame mapping) have neither.
 */
export interface InstrumentedModel extends ProgramModel {
  instrumentation?: {
    units: {
      path: string;
      plan?: {
        updatePoints?: string[];
        frames?: {
          functions: { key: string; locals?: { name: string; escapesAt?: number }[] }[];
          refused: { key: string; reason: string }[];
          noResume: { key: string; line: number; reason: string }[];
        };
      };
    }[];
  };
}
