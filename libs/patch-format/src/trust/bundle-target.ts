import type { PatchManifest } from '../manifest';
import { BundleRefusal } from './refusal';

/** What a process's STATUS reply says about it (control protocol, libs/runtime/ABI.md §6). */
export interface ProcessTarget {
  pid: number;
  program: string;
  /** The build the process started as. */
  buildId: string;
  /** The patches applied to it, oldest first. */
  patches: { toBuildId: string }[];
}

/** The build a process runs now: its last applied patch's target, else the build it started as. */
export function currentBuildOf(status: Pick<ProcessTarget, 'buildId' | 'patches'>): string {
  const last = status.patches[status.patches.length - 1];
  return last ? last.toBuildId : status.buildId;
}

/**
 * Refuses a bundle made for another program or another build than the one the process runs
 * (from its STATUS), before anything is staged. The runtime checks the build id again at STAGE;
 * this says why in terms the user can act on.
 */
export function checkBundleTarget(
  manifest: Pick<PatchManifest, 'patchId' | 'program' | 'from' | 'to'>,
  status: ProcessTarget,
): void {
  const pid = status.pid;
  if (status.program !== manifest.program)
    throw new BundleRefusal(
      'wrong-program',
      `pid ${pid} runs '${status.program}', but patch ${manifest.patchId.slice(0, 16)} is for '${manifest.program}'`,
    );
  const current = currentBuildOf(status);
  if (current === manifest.from.buildId) return;
  throw new BundleRefusal(
    'wrong-build',
    current === manifest.to.buildId
      ? `pid ${pid} already runs build ${current} (${manifest.to.version}), the target of patch ${manifest.patchId.slice(0, 16)}`
      : `pid ${pid} runs build ${current}, but patch ${manifest.patchId.slice(0, 16)} moves build ${manifest.from.buildId} (${manifest.from.version}) to ${manifest.to.version}; generate a patch from the running build ('dsu patch <its build dir> <new build dir>')`,
  );
}
