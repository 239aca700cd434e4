import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { validateManifest, type PatchManifest } from '@dsu/patch-format';
import { type ControlClient, withControl } from './control-client';
import type { UpdateResult } from './protocol';

export interface ApplyResult extends UpdateResult {
  patchId: string;
  pid: number;
  /** Time to verify and load the bundle in the process, before the update was armed. */
  stageMs: number;
}

/** Reads and verifies a bundle directory: schema, patch.so hash and patch id. */
export function readBundle(dir: string): { manifest: PatchManifest; soPath: string } {
  const abs = resolve(dir);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(join(abs, 'manifest.json'), 'utf8'));
  } catch (err) {
    throw new Error(`${dir} is not a readable patch bundle (manifest.json: ${(err as Error).message}); create one with 'dsu patch'`);
  }
  const soPath = join(abs, 'patch.so');
  const manifest = validateManifest(raw, readFileSync(soPath));
  return { manifest, soPath };
}

/**
 * Applies a patch bundle to one running process: verifies the bundle, STAGEs it (the process
 * checks the hash and build id and loads it off the critical path), then COMMITs with a
 * deadline and returns the outcome. A refusal at any step leaves the process on its old code.
 */
export async function applyBundle(pid: number, bundleDir: string, runDir: string, timeoutMs: number): Promise<ApplyResult> {
  const { manifest, soPath } = readBundle(bundleDir);
  return applyVerifiedBundle(pid, soPath, manifest, runDir, timeoutMs);
}

/**
 * STAGE + COMMIT of a bundle whose manifest the caller has already verified (e.g. against a
 * signature): the manifest is not read again, and the runtime loads `soPath` only if it still
 * hashes to `manifest.soSha256`, so a file swapped after the verification is refused.
 */
export async function applyVerifiedBundle(
  pid: number,
  soPath: string,
  manifest: Pick<PatchManifest, 'patchId' | 'soSha256' | 'when'>,
  runDir: string,
  timeoutMs: number,
): Promise<ApplyResult> {
  return withControl(pid, runDir, (c) => applyOnConnection(c, soPath, manifest, timeoutMs));
}

/**
 * STAGE + COMMIT over a connection the caller already holds (and closes), e.g. the one its
 * STATUS went over: one connection per process instead of two. Same checks as applyVerifiedBundle.
 */
export async function applyOnConnection(
  c: ControlClient,
  soPath: string,
  manifest: Pick<PatchManifest, 'patchId' | 'soSha256' | 'when'>,
  timeoutMs: number,
): Promise<ApplyResult> {
  const pid = c.pid;
  const t0 = Date.now();
  const staged = await c.stage(soPath, manifest.soSha256, manifest.patchId);
  const stageMs = Date.now() - t0;
  if (staged.ok !== true) return { ...(staged as UpdateResult), patchId: manifest.patchId, pid, stageMs };
  // patch.yaml's deadline: the update happens within it or not at all
  const result = await c.commit(Math.min(timeoutMs, manifest.when?.deadlineMs ?? timeoutMs));
  return { ...result, patchId: manifest.patchId, pid, stageMs };
}

/** Rolls back the last patch applied to a process. */
export async function rollbackProcess(pid: number, runDir: string, timeoutMs: number): Promise<UpdateResult & { pid: number }> {
  return withControl(pid, runDir, async (c) => ({ ...(await c.rollback(timeoutMs)), pid }));
}
