import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ProgramModel } from '@dsu/c-frontend';
import type { FramePlan } from '@dsu/instrument';

/** What `dsu build` writes into its output directory (`build.json`). */
export interface BuildInfo {
  format: 1;
  program: string;
  version: string;
  buildId: string;
  /** Executable, relative to the build dir. */
  executable: string;
  /** Program model (`<exe>.dsu.json`), relative to the build dir. */
  model: string;
  /** Root the unit paths are relative to (the copied sources), relative to the build dir. */
  sourceRoot: string;
  updatePoints: string[];
}

export interface InstrumentedUnit {
  path: string;
  object: string;
  /** Preprocessed unit, relative to the source root. */
  preprocessed: string;
  plan: {
    functions: { key: string; mangled: string }[];
    updatePoints: string[];
    promotedStatics?: Record<string, string>;
    /** `[caller, callee]`: calls compiled direct (the callee may be inlined into the caller). */
    inlinable?: [string, string][];
    /** Stack-frame facts (builds made before frame mapping have none). */
    frames?: Omit<FramePlan, 'edits'>;
  };
}

export interface LoadedBuild {
  dir: string;
  info: BuildInfo;
  model: ProgramModel & { instrumentation: { units: InstrumentedUnit[] } };
}

export function loadBuild(dir: string): LoadedBuild {
  const abs = resolve(dir);
  const infoPath = join(abs, 'build.json');
  if (!existsSync(infoPath))
    throw new Error(
      `${dir} is not a dsu build directory (no build.json); create one with 'dsu build <src> --out ${dir}'`,
    );
  const info = JSON.parse(readFileSync(infoPath, 'utf8')) as BuildInfo;
  const model = JSON.parse(readFileSync(join(abs, info.model), 'utf8')) as LoadedBuild['model'];
  return { dir: abs, info, model };
}
