import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findClang } from '@dsu/c-frontend';
import { computePatchId, type PatchManifest } from '@dsu/patch-format';
import { loadBuild } from './build-dir';
import { planContents, UnsupportedChangeError, type BuildPatchOptions } from './plan-contents';
import { planData } from './plan-data';
import { planFrameMaps } from './plan-frames';
import { compileBundle, DRAFT_MANIFEST, writePatch, type PatchPlan } from './write-patch';
export { PatchCompileError, DRAFT_MANIFEST } from './write-patch';

export { UnsupportedChangeError, type BuildPatchOptions } from './plan-contents';
export { NO_SAFE_POINT } from './c-templates';

export interface BuildPatchResult {
  manifest: PatchManifest;
  dir: string;
}

/**
 * `dsu patch`: diffs two builds and writes a patch bundle — patch units (the new version's
 * preprocessed units reduced to the changed and added functions), patch.c (the descriptor the
 * runtime reads), patch.so and manifest.json.
 *
 * The phases, in order (each a function of the models and the earlier phases' plans; only the
 * last one writes files):
 *   1. planContents (plan-contents.ts): which functions, globals and types the patch carries and
 *      why, or what it cannot carry (refused here with UnsupportedChangeError);
 *   2. planData (plan-data.ts): layouts, transformers, instances, state transformer, the units
 *      that carry the generated code; planFrameMaps (plan-frames.ts): the stack-frame maps of
 *      replaced functions that can be active (refused here when a frame would have nowhere to go);
 *   3. writePatch (write-patch.ts): patch units, descriptor, manifest, patch.so, models.
 * A new phase adds its plan to PatchPlan and its output to writePatch.
 */
export async function buildPatch(
  fromDir: string,
  toDir: string,
  outDir: string,
  opts: BuildPatchOptions = {},
): Promise<BuildPatchResult> {
  const from = loadBuild(fromDir);
  const to = loadBuild(toDir);
  if (from.info.program !== to.info.program) {
    throw new Error(
      `${fromDir} builds '${from.info.program}' but ${toDir} builds '${to.info.program}'; a patch moves one program between its versions`,
    );
  }

  opts.onPhase?.('contents');
  const contents = planContents(from.model, to.model, opts);
  if (contents.refusals.length > 0) throw new UnsupportedChangeError(contents.refusals);
  if (contents.empty) {
    throw new Error(
      `${fromDir} and ${toDir} have the same code (no function, signature or struct layout changed, none was added or removed); there is nothing to patch`,
    );
  }

  const clang = findClang().path;
  const suffix = 'v' + to.model.buildId.slice(0, 10);
  opts.onPhase?.('data and frames');
  const data = planData(from.model, to.model, contents, { spec: opts.spec, suffix });
  const frames = planFrameMaps(from, to, contents, opts.spec?.frames);
  if (frames.refusals.length > 0) throw new UnsupportedChangeError(frames.refusals);

  const plan: PatchPlan = { from, to, suffix, contents, data, frames, spec: opts.spec };
  opts.onPhase?.('write and compile');
  const manifest = await writePatch(plan, outDir, clang);
  return { manifest, dir: outDir };
}

/**
 * `dsu patch --rebuild <patch-dir>`: after hand edits of units/*.i or patch.c, compiles the bundle
 * again and gives it a new patch id (an earlier verdict no longer applies and is removed).
 */
export async function rebuildPatch(dir: string): Promise<PatchManifest> {
  // A bundle whose first compile failed has only the draft (dsu patch wrote everything else).
  const manifestPath = [join(dir, 'manifest.json'), join(dir, DRAFT_MANIFEST)].find((p) => existsSync(p));
  if (!manifestPath)
    throw new Error(`${dir} is not a patch bundle (no manifest.json or ${DRAFT_MANIFEST}); generate one with dsu patch <old-build> <new-build> --out ${dir}`);
  const old = JSON.parse(readFileSync(manifestPath, 'utf8')) as PatchManifest;
  const soBytes = await compileBundle(dir, findClang().path);
  const { patchId: _old, ...body } = { ...old, soSha256: createHash('sha256').update(soBytes).digest('hex') };
  const manifest: PatchManifest = { ...body, patchId: computePatchId(body, soBytes) };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  rmSync(join(dir, DRAFT_MANIFEST), { force: true });
  rmSync(join(dir, 'verdict.json'), { force: true });
  return manifest;
}

export { loadBuild };
