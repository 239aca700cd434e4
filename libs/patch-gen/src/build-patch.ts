import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { analyzeUnit, codegenFlags, findClang, splitFlags } from '@dsu/c-frontend';
import { applyEdits, locateRuntime, parseUpdatePointSpec } from '@dsu/instrument';
import { computePatchId, type ManifestFunction, type PatchManifest } from '@dsu/patch-format';
import { loadBuild, type LoadedBuild } from './build-dir';
import { diffFunctions } from './model-diff';
import { planPatchUnit, type PatchUnitFunction } from './patch-unit';

const run = promisify(execFile);

export class UnsupportedChangeError extends Error {
  constructor(readonly reasons: string[]) {
    super(`the new version changes things a code-only patch cannot carry:\n  - ${reasons.join('\n  - ')}`);
    this.name = 'UnsupportedChangeError';
  }
}

export interface BuildPatchResult {
  manifest: PatchManifest;
  dir: string;
}

const CHANGE_CODE = { body: 'DSU_CHANGE_BODY', added: 'DSU_CHANGE_ADDED', removed: 'DSU_CHANGE_REMOVED' } as const;

/** Data changes belong to a later issue: refuse them with a precise list instead of a broken patch. */
function unsupportedChanges(from: LoadedBuild, to: LoadedBuild, signature: string[]): string[] {
  const reasons = signature.map((k) => `function '${k}' changes its signature`);
  const a = from.model;
  const b = to.model;
  for (const [k, t] of Object.entries(b.types)) {
    const old = a.types[k];
    if (old && old.layoutHash !== t.layoutHash) reasons.push(`type '${k}' changes its layout`);
  }
  for (const [k, g] of Object.entries(b.globals)) {
    const old = a.globals[k];
    if (!old) reasons.push(`global '${k}' is added`);
    else if (old.type !== g.type) reasons.push(`global '${k}' changes type from '${old.type}' to '${g.type}'`);
  }
  for (const k of Object.keys(a.globals)) if (!(k in b.globals)) reasons.push(`global '${k}' is removed`);
  return reasons;
}

/**
 * `dsu patch`: diffs two builds and writes a patch bundle — patch units (the new version's
 * preprocessed units reduced to the changed and added functions), patch.c (the descriptor the
 * runtime reads), patch.so and manifest.json.
 */
export async function buildPatch(fromDir: string, toDir: string, outDir: string): Promise<BuildPatchResult> {
  const from = loadBuild(fromDir);
  const to = loadBuild(toDir);
  if (from.info.program !== to.info.program) {
    throw new Error(`${fromDir} builds '${from.info.program}' but ${toDir} builds '${to.info.program}'; a patch moves one program between its versions`);
  }
  const diff = diffFunctions(from.model, to.model);
  const unsupported = unsupportedChanges(from, to, diff.signature);
  if (unsupported.length > 0) throw new UnsupportedChangeError(unsupported);
  if (diff.body.length + diff.added.length + diff.removed.length === 0) {
    throw new Error(`${fromDir} and ${toDir} have the same code (no function changed, was added or removed); there is nothing to patch`);
  }

  const clang = findClang().path;
  const suffix = 'v' + to.model.buildId.slice(0, 10);
  const changed = new Set(diff.body);
  const added = new Set(diff.added);
  const programFunctions = new Map<string, { unitId: string; isStatic: boolean }>();
  const unitIds = new Map<string, string>(to.model.units.map((u) => [u.path, u.id]));
  for (const f of Object.values(to.model.functions)) programFunctions.set(f.key, { unitId: unitIds.get(f.unit) ?? '', isStatic: f.isStatic });
  const updatePoints = to.info.updatePoints.map(parseUpdatePointSpec);

  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(join(outDir, 'units'), { recursive: true });
  const touched = new Set([...changed, ...added].map((k) => to.model.functions[k].unit));
  const units: BundleUnit[] = [];
  const patchFns: PatchUnitFunction[] = [];
  for (const unit of to.model.instrumentation.units.filter((u) => touched.has(u.path))) {
    const unitModel = to.model.units.find((u) => u.path === unit.path);
    if (!unitModel) throw new Error(`the model of ${toDir} has no unit '${unit.path}'`);
    const iPath = join(to.dir, to.info.sourceRoot, unit.preprocessed);
    const analysis = await analyzeUnit({
      source: iPath,
      flags: splitFlags(unitModel.flags).semantic,
      cwd: join(to.dir, to.info.sourceRoot),
      unitPath: unit.path,
      clang,
      skipLayout: true,
    });
    const plan = planPatchUnit(analysis, { changed, added, programFunctions, suffix, updatePoints });
    const name = unit.path.replace(/[^A-Za-z0-9_.-]/g, '_');
    const patchUnit = join(outDir, 'units', `${name}.i`);
    writeFileSync(patchUnit, applyEdits(analysis.preprocessed, plan.edits));
    units.push({ file: `units/${name}.i`, unit: unit.path, flags: codegenFlags(unitModel.flags) });
    patchFns.push(...plan.functions);
  }

  const fns: ManifestFunction[] = [
    ...patchFns.map((f) => ({ key: f.key, change: f.change, newSymbol: f.symbol })),
    ...diff.removed.map((key) => ({ key, change: 'removed' as const })),
  ];
  const patchC = join(outDir, 'patch.c');
  writeFileSync(patchC, descriptorSource(from, to, patchFns, diff.removed));
  writeFileSync(join(outDir, 'units', 'index.json'), JSON.stringify(units, null, 2) + '\n');
  const soBytes = await compileBundle(outDir, clang);

  const body: Omit<PatchManifest, 'patchId'> = {
    format: 1,
    program: to.info.program,
    from: { buildId: from.model.buildId, version: from.info.version },
    to: { buildId: to.model.buildId, version: to.info.version },
    soSha256: createHash('sha256').update(soBytes).digest('hex'),
    functions: fns,
    types: [],
    globals: [],
    allowedUpdatePoints: [],
  };
  const manifest: PatchManifest = { ...body, patchId: computePatchId(body, soBytes) };
  writeFileSync(join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  // The two program models travel with the bundle, so `dsu check` (and the checker service)
  // can analyze the patch without the build directories.
  mkdirSync(join(outDir, 'models'), { recursive: true });
  writeFileSync(join(outDir, 'models', 'from.json'), JSON.stringify(from.model));
  writeFileSync(join(outDir, 'models', 'to.json'), JSON.stringify(to.model));
  return { manifest, dir: outDir };
}

/** A patch unit of a bundle and the code generation flags of its original compile. */
interface BundleUnit {
  file: string;
  unit: string;
  flags: string[];
}

/** Compiles a bundle's patch units and descriptor into patch.so; returns its bytes. */
async function compileBundle(dir: string, clang: string): Promise<Buffer> {
  const units = JSON.parse(readFileSync(join(dir, 'units', 'index.json'), 'utf8')) as BundleUnit[];
  const work = join(dir, '.work');
  mkdirSync(work, { recursive: true });
  try {
    const objects: string[] = [];
    for (const [i, u] of units.entries()) {
      const obj = join(work, `unit${i}.o`);
      await compile(clang, [...u.flags, '-fPIC', '-Wno-unused-function', '-c', '-x', 'cpp-output', join(dir, u.file), '-o', obj], u.file);
      objects.push(obj);
    }
    const descObj = join(work, 'patch.o');
    await compile(clang, ['-O2', '-fPIC', '-I', locateRuntime().includeDir, '-c', join(dir, 'patch.c'), '-o', descObj], 'patch.c');
    await compile(clang, ['-shared', '-o', join(dir, 'patch.so'), ...objects, descObj], 'patch.so');
    return readFileSync(join(dir, 'patch.so'));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * `dsu patch --rebuild <patch-dir>`: after hand edits of units/*.i or patch.c, compiles the bundle
 * again and gives it a new patch id (an earlier verdict no longer applies and is removed).
 */
export async function rebuildPatch(dir: string): Promise<PatchManifest> {
  const old = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as PatchManifest;
  const soBytes = await compileBundle(dir, findClang().path);
  const { patchId: _old, ...body } = { ...old, soSha256: createHash('sha256').update(soBytes).digest('hex') };
  const manifest: PatchManifest = { ...body, patchId: computePatchId(body, soBytes) };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  rmSync(join(dir, 'verdict.json'), { force: true });
  return manifest;
}

async function compile(clang: string, args: string[], what: string): Promise<void> {
  try {
    await run(clang, args, { maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`compiling ${what} of the patch failed:\n${e.stderr || e.message}`);
  }
}

/** patch.c: the descriptor the runtime reads with dlsym (libs/runtime/ABI.md §7). */
function descriptorSource(from: LoadedBuild, to: LoadedBuild, fns: PatchUnitFunction[], removed: string[]): string {
  const c = (s: string) => JSON.stringify(s);
  const entries = [
    ...fns.map((f) => `    { ${c(f.key)}, ${CHANGE_CODE[f.change]}, (void *)&${f.symbol}, ${f.slot ? `&${f.slot}` : 'NULL'} },`),
    ...removed.map((k) => `    { ${c(k)}, ${CHANGE_CODE.removed}, NULL, NULL },`),
  ];
  return [
    `/* Patch for ${to.info.program}: ${from.info.version} (${from.model.buildId}) -> ${to.info.version} (${to.model.buildId}).`,
    " * Generated by `dsu patch`. The new function bodies are in units/*.i (the new version's",
    ' * preprocessed units, reduced to the changed and added functions); this file is the',
    ' * descriptor the runtime reads (libs/runtime/ABI.md section 7). */',
    '#include <dsu.h>',
    '',
    ...fns.map((f) => `extern void ${f.symbol}(void);`),
    ...fns.filter((f) => f.slot).map((f) => `extern void *${f.slot};`),
    '',
    'static const struct dsu_patch_fn fns[] = {',
    ...entries,
    '};',
    `const struct dsu_patch_desc dsu_patch = { DSU_ABI_VERSION, ${c(from.model.buildId)}, ${c(to.model.buildId)}, ${c(from.info.version)}, ${c(to.info.version)},`,
    `    ${entries.length}u, fns, 0u, NULL };`,
    '',
  ].join('\n');
}

export { loadBuild };
